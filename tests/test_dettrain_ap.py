"""Average precision on hand-made cases: perfect, misses, duplicates, false positives, ignores, buckets."""
import math

import numpy as np
import pytest

from arcface_paddle.core.boxes import box_iou
from blazeface_paddle.training.evaluation import (
    FALSE_POSITIVE,
    IGNORED,
    TRUE_POSITIVE,
    average_precision,
    evaluate_detections,
    match_image,
)

FACES = np.array([[0, 0, 10, 10], [20, 0, 60, 40], [0, 100, 120, 220]], np.float32)   # heights 10, 40, 120
NONE = np.zeros(3, bool)


def test_box_iou_hand_values():
    np.testing.assert_allclose(box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]]),
                               [[50 / 150, 0, 1]])


def test_perfect_detections_score_one_everywhere():
    report = evaluate_detections([(FACES, np.array([0.9, 0.8, 0.7]))], [(FACES, NONE)])
    assert report.ap == 1.0 and report.overall.recall == 1.0
    assert [report.buckets[name].ap for name in ("small", "medium", "large")] == [1.0, 1.0, 1.0]
    assert [report.buckets[name].num_faces for name in ("small", "medium", "large")] == [1, 1, 1]


def test_missed_face_caps_recall():
    report = evaluate_detections([(FACES[:2], np.array([0.9, 0.8]))], [(FACES, NONE)])
    assert math.isclose(report.ap, 2 / 3) and math.isclose(report.overall.recall, 2 / 3)
    assert report.buckets["large"].ap == 0.0 and report.buckets["small"].ap == 1.0


def test_duplicate_is_a_false_positive_and_ranking_matters():
    duplicate = FACES[1] + 1
    # the duplicate ranks below every true hit: precision at full recall is still 1 → AP 1
    late = evaluate_detections([(np.vstack([FACES, duplicate]), np.array([0.9, 0.8, 0.7, 0.1]))], [(FACES, NONE)])
    assert late.ap == 1.0
    # ranked first it matches face 1 and the real box of face 1 becomes the duplicate:
    # order = dup(TP), f0(TP), f1(FP), f2(TP) → precisions at each recall step 1, 1, 3/4 → AP = (1 + 1 + 0.75) / 3
    early = evaluate_detections([(np.vstack([FACES, duplicate]), np.array([0.9, 0.8, 0.7, 0.95]))], [(FACES, NONE)])
    assert math.isclose(early.ap, (1 + 1 + 0.75) / 3)


def test_false_positive_on_top_and_empty_cases():
    far_away = np.array([[300, 300, 340, 340]], np.float32)
    # FP first: raw precision at recall 1/3, 2/3, 1 is 1/2, 2/3, 3/4; the all-point envelope takes the best
    # precision at any higher recall, 3/4 everywhere → AP 0.75
    report = evaluate_detections([(np.vstack([far_away, FACES]), np.array([0.99, 0.9, 0.8, 0.7]))], [(FACES, NONE)])
    assert math.isclose(report.ap, 0.75)
    # FP last: it comes after full recall and costs nothing
    last = evaluate_detections([(np.vstack([FACES, far_away]), np.array([0.9, 0.8, 0.7, 0.1]))], [(FACES, NONE)])
    assert last.ap == 1.0
    assert evaluate_detections([(np.zeros((0, 4)), np.zeros(0))], [(FACES, NONE)]).ap == 0.0
    assert math.isnan(evaluate_detections([(far_away, np.array([0.5]))], [(np.zeros((0, 4)), np.zeros(0, bool))]).ap)
    with pytest.raises(ValueError):
        evaluate_detections([], [(FACES, NONE)])


def test_ignored_faces_count_neither_way():
    ignore = np.array([False, False, True])
    labels = match_image(FACES, np.array([0.9, 0.8, 0.7]), FACES, ignore)
    assert labels.tolist() == [TRUE_POSITIVE, TRUE_POSITIVE, IGNORED]
    report = evaluate_detections([(FACES[:2], np.array([0.9, 0.8]))], [(FACES, ignore)])
    assert report.ap == 1.0 and report.overall.num_faces == 2
    assert match_image(FACES[:1] + 50, [0.5], FACES, ignore).tolist() == [FALSE_POSITIVE]


def test_iou_threshold_decides_hits_and_average_precision_interpolates():
    shifted = FACES + np.array([0, 0, 0, 0], np.float32)
    shifted[1] = [30, 0, 70, 40]                       # IoU 30·40 / (50·40) = 0.6
    assert evaluate_detections([(shifted, np.array([0.9, 0.8, 0.7]))], [(FACES, NONE)], iou_threshold=0.5).ap == 1.0
    assert evaluate_detections([(shifted, np.array([0.9, 0.8, 0.7]))], [(FACES, NONE)], iou_threshold=0.7).ap < 1.0
    # TP FP TP with 2 faces: the envelope lifts precision at recall 1/2 to 1 → AP = 0.5·1 + 0.5·2/3
    labels = np.array([TRUE_POSITIVE, FALSE_POSITIVE, TRUE_POSITIVE])
    assert math.isclose(average_precision(np.array([0.9, 0.8, 0.7]), labels, 2), 0.5 + 0.5 * 2 / 3)


def test_out_of_bucket_detections_are_ignored_in_that_bucket():
    tiny_fp = np.array([[200, 0, 208, 8]], np.float32)          # 8 px high: only the small bucket sees it
    report = evaluate_detections([(np.vstack([tiny_fp, FACES]), np.array([0.99, 0.9, 0.8, 0.7]))], [(FACES, NONE)])
    assert report.buckets["medium"].ap == 1.0 and report.buckets["large"].ap == 1.0
    assert math.isclose(report.buckets["small"].ap, 0.5)
    table = report.table()
    assert "small" in table and "AP@0.5" in table
    assert report.as_dict()["buckets"]["medium"]["ap"] == 1.0
