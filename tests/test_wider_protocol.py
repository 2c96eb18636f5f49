"""The official WIDER FACE protocol on a tiny WIDER-format set made here, against values computed by hand.

The set: one event, two images.  Image A has faces f1, f2, f3 (Easy keeps f1; Medium f1, f2; Hard all three);
image B has one face (Medium and Hard keep it).  Detections, by score: A: f1 exactly, f2 exactly, f1 again (a
duplicate), a box on nothing; B: its face, a box on nothing.

Easy (1 face): f2 and B's face are outside the subset, so the detections on them are ignored; the proposals run
(1 found of 1 proposal), (1/2), (1/3), (1/3 with B ignored), (1/4): AP = 1.
Medium (3 faces): (found, proposals) = (1,1) (2,2) (2,3) (2,4) (3,5) (3,6): precision 1, 1, 2/3, 1/2, 3/5, 1/2 at
recall 1/3, 2/3, 2/3, 2/3, 1, 1 → AP = 1/3·1 + 1/3·1 + 1/3·3/5 = 13/15.
Hard (4 faces, f3 never found): recall 1/4, 1/2, 1/2, 1/2, 3/4, 3/4 → AP = 1/4 + 1/4 + 1/4·3/5 = 0.65.
"""
import json

import numpy as np
import pytest
import scipy.io

from arcface_paddle.cli import eval_detector
from arcface_paddle.core.errors import ToolkitError
from blazeface_paddle.training import wider_protocol

EVENT = "0--Parade"
BOXES = {"img_a": [[0, 0, 10, 10], [20, 0, 10, 10], [40, 0, 10, 10]], "img_b": [[0, 0, 20, 20]]}
KEEP = {"easy": {"img_a": [1], "img_b": []}, "medium": {"img_a": [1, 2], "img_b": [1]},
        "hard": {"img_a": [1, 2, 3], "img_b": [1]}}
# raw scores far from [0, 1]: the protocol normalises them over the whole set
PREDICTIONS = {"img_a": [[0, 0, 10, 10, 9.0], [20, 0, 10, 10, 8.0], [0, 0, 10, 10, 7.0], [100, 100, 10, 10, 6.0]],
               "img_b": [[0, 0, 20, 20, 5.0], [40, 40, 5, 5, 4.0]]}
EXPECTED = {"easy": 1.0, "medium": 13 / 15, "hard": 0.65}


def cell(items) -> np.ndarray:
    out = np.empty((len(items), 1), dtype=object)
    for index, item in enumerate(items):
        out[index, 0] = item
    return out


def write_ground_truth(folder, boxes=BOXES, keep=KEEP):
    """The official .mat layout: per event a cell of per-image cells (names, N×4 boxes, K×1 kept indices)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = list(boxes)
    scipy.io.savemat(folder / "wider_face_val.mat", {
        "event_list": cell([EVENT]),
        "file_list": cell([cell([np.array([name]) for name in names])]),
        "face_bbx_list": cell([cell([np.array(boxes[name], np.float64).reshape(-1, 4) for name in names])])})
    for subset in ("easy", "medium", "hard"):
        scipy.io.savemat(folder / f"wider_{subset}_val.mat", {
            "event_list": cell([EVENT]), "file_list": cell([cell([np.array([name]) for name in names])]),
            "gt_list": cell([cell([np.array(keep[subset][name], np.float64).reshape(-1, 1) for name in names])])})
    return folder


def predictions_dict():
    return {(EVENT, name): np.array(rows, np.float64) for name, rows in PREDICTIONS.items()}


def test_ground_truth_loads_from_the_official_mat_layout(tmp_path):
    images = wider_protocol.load_ground_truth(str(write_ground_truth(tmp_path / "gt")))
    assert [(image.event, image.name, len(image.boxes)) for image in images] == [(EVENT, "img_a", 3),
                                                                                 (EVENT, "img_b", 1)]
    assert images[0].keep["medium"].tolist() == [True, True, False]
    assert images[1].keep["easy"].tolist() == [False]


def test_subset_ap_matches_the_hand_computed_values(tmp_path):
    ground_truth = wider_protocol.load_ground_truth(str(write_ground_truth(tmp_path / "gt")))
    report = wider_protocol.evaluate_wider(predictions_dict(), ground_truth)
    for subset, value in EXPECTED.items():
        assert report.ap[subset] == pytest.approx(value, abs=1e-9), subset
    assert report.num_faces == {"easy": 1, "medium": 3, "hard": 4}


def test_overlap_is_pixel_inclusive_as_the_official_tool():
    # x1 y1 x2 y2 = 0 0 9 9 covers 10×10 pixels; against 5 0 14 9 it shares 5×10 of them → 50 / 150.
    overlaps = wider_protocol.box_overlaps(np.array([[0, 0, 9, 9.0], [20, 20, 29, 29]]), np.array([5, 0, 14, 9.0]))
    np.testing.assert_allclose(overlaps, [1 / 3, 0.0])
    # a box with x1 == x2, y1 == y2 still covers one pixel (an exclusive IoU would be 0 / 0)
    np.testing.assert_allclose(wider_protocol.box_overlaps(np.array([[3, 3, 3, 3.0]]), np.array([3, 3, 3, 3.0])), [1])


def test_missing_detections_lower_recall_and_score_order_within_an_image_does_not_matter(tmp_path):
    ground_truth = wider_protocol.load_ground_truth(str(write_ground_truth(tmp_path / "gt")))
    shuffled = {key: value[::-1] for key, value in predictions_dict().items()}      # files need not be sorted
    assert wider_protocol.evaluate_wider(shuffled, ground_truth).ap == pytest.approx(EXPECTED)
    only_a = {(EVENT, "img_a"): predictions_dict()[(EVENT, "img_a")]}               # image B: no file, no faces
    report = wider_protocol.evaluate_wider(only_a, ground_truth)
    # Medium: (1,1) (2,2) (2,3) (2,4) of 3 faces → AP 2/3; Hard: of 4 → 1/2
    assert report.ap["medium"] == pytest.approx(2 / 3) and report.ap["hard"] == pytest.approx(0.5)


def test_cli_scores_saved_prediction_files(tmp_path, capsys):
    gt = write_ground_truth(tmp_path / "gt")
    wider_protocol.write_predictions(str(tmp_path / "preds"), predictions_dict())
    text = (tmp_path / "preds" / EVENT / "img_a.txt").read_text().splitlines()
    assert text[:2] == ["img_a", "4"] and text[2].split() == ["0.0", "0.0", "10.0", "10.0", "9.00000"]
    assert eval_detector.main(["--wider-gt", str(gt), "--predictions", str(tmp_path / "preds"),
                               "--json", str(tmp_path / "ap.json")]) == 0
    saved = json.loads((tmp_path / "ap.json").read_text())
    assert saved["ap"] == pytest.approx(EXPECTED)
    assert "Medium" in capsys.readouterr().out


def test_bad_ground_truth_is_a_one_line_error(tmp_path):
    with pytest.raises(ToolkitError, match="wider_face_val.mat"):
        wider_protocol.load_ground_truth(str(tmp_path))
    gt = write_ground_truth(tmp_path / "gt", keep={**KEEP, "hard": {"img_a": [1, 2, 7], "img_b": [1]}})
    with pytest.raises(ToolkitError, match="face 7"):
        wider_protocol.load_ground_truth(str(gt))
    (tmp_path / "gt" / "wider_easy_val.mat").write_bytes(b"not a mat file")
    with pytest.raises(ToolkitError, match="wider_easy_val.mat"):
        wider_protocol.load_ground_truth(str(tmp_path / "gt"))
