"""Alignment math: Umeyama similarity fit against hand-made transforms and an independent least-squares solve."""
import json

import cv2
import numpy as np
import pytest

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.pipeline import face_alignment as alignment
from arcface_paddle.preprocessing import ARCFACE_TEMPLATE_4, ARCFACE_TEMPLATE_5


def similarity_matrix(angle_deg, scale, tx, ty):
    angle = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(angle), -scale * np.sin(angle), tx],
                     [scale * np.sin(angle), scale * np.cos(angle), ty]])


def apply(matrix, points):
    return points @ matrix[:, :2].T + matrix[:, 2]


@pytest.mark.parametrize("angle,scale,tx,ty", [(0, 1, 0, 0), (20, 1.7, -30, 12.5), (-75, 0.31, 200, -4)])
def test_umeyama_recovers_exact_transform(angle, scale, tx, ty):
    src = np.array([[10, 20], [55, 18], [33, 47], [30, 70], [60, 66]], dtype=np.float64)
    truth = similarity_matrix(angle, scale, tx, ty)
    estimate = alignment.umeyama_similarity(src, apply(truth, src))
    np.testing.assert_allclose(estimate, truth, atol=1e-4)


def test_umeyama_is_the_least_squares_optimum_with_noise():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, size=(6, 2))
    dst = apply(similarity_matrix(33, 0.8, 5, -7), src) + rng.normal(0, 3.0, size=src.shape)
    # Independent solve: a similarity transform is linear in (a, b, tx, ty) with M = [[a, -b, tx], [b, a, ty]].
    rows = []
    for (x, y) in src:
        rows.append([x, -y, 1, 0])
        rows.append([y, x, 0, 1])
    (a, b, tx, ty), *_ = np.linalg.lstsq(np.array(rows), dst.reshape(-1), rcond=None)
    expected = np.array([[a, -b, tx], [b, a, ty]])
    np.testing.assert_allclose(alignment.umeyama_similarity(src, dst), expected, atol=1e-4)


def test_umeyama_never_returns_a_mirror():
    src = np.array([[0, 0], [10, 0], [0, 10], [7, 7]], dtype=np.float64)
    mirrored = src * np.array([-1, 1])
    matrix = alignment.umeyama_similarity(src, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_umeyama_rejects_degenerate_points():
    with pytest.raises(ValueError):
        alignment.umeyama_similarity(np.ones((4, 2)), np.zeros((4, 2)))


def test_four_keypoints_land_on_the_four_point_template():
    # A face rotated by 15°, 2.5× larger than the template, somewhere in a 400×300 image.
    truth = similarity_matrix(15, 2.5, 120, 40)
    keypoints = apply(truth, ARCFACE_TEMPLATE_4.astype(np.float64))
    matrix = alignment.alignment_matrix(keypoints)
    np.testing.assert_allclose(apply(matrix.astype(np.float64), keypoints), ARCFACE_TEMPLATE_4, atol=1e-3)
    # The warped image puts a marker drawn at each eye onto the template's eye position.
    image = np.zeros((300, 400, 3), np.uint8)
    for x, y in keypoints[:2]:
        cv2.circle(image, (int(round(x)), int(round(y))), 6, (255, 255, 255), -1)
    crop = alignment.align_face(image, keypoints)
    assert crop.shape == (112, 112, 3)
    for x, y in ARCFACE_TEMPLATE_4[:2]:
        assert crop[int(round(y)), int(round(x))].min() > 200
    assert crop[100, 56].max() == 0      # mouth area has no marker


def test_six_blazeface_keypoints_map_to_five_landmarks_that_move_with_the_face():
    from arcface_paddle.pipeline import landmark_map

    mean_shape = np.asarray(landmark_map.MEAN_SHAPE, np.float64)
    five = alignment.five_points_from_blazeface(mean_shape).astype(np.float64)
    # On the mean BlazeFace shape (in crop pixels) the estimate is a face on the ArcFace template: eyes, nose and
    # mouth corners within a few pixels of it, mouth corners either side of BlazeFace's mouth centre.
    assert np.abs(five - ARCFACE_TEMPLATE_5).max() < 4
    assert five[3, 0] < mean_shape[3, 0] < five[4, 0]
    # Equivariance: turning, scaling and moving the keypoints turns, scales and moves the estimate the same way.
    truth = similarity_matrix(-30, 3.1, 250, 80)
    moved = alignment.five_points_from_blazeface(apply(truth, mean_shape))
    np.testing.assert_allclose(moved, apply(truth, five), atol=1e-3)
    # So the alignment of the moved keypoints undoes the move: the same crop as before the move.
    before = alignment.alignment_matrix(mean_shape).astype(np.float64)
    after = alignment.alignment_matrix(apply(truth, mean_shape)).astype(np.float64)
    np.testing.assert_allclose(apply(after, apply(truth, mean_shape)), apply(before, mean_shape), atol=1e-2)
    with pytest.raises(ToolkitError):
        alignment.five_points_from_blazeface(mean_shape[:4])


def test_five_point_landmarks_give_upright_faces(repo_root):
    data = json.loads((repo_root / "tests" / "data" / "faces_landmarks.json").read_text())
    for name, face in data["faces"].items():
        matrix = alignment.alignment_matrix(np.array(face["landmarks"]))
        angle = np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0]))
        assert abs(angle) < 25, name      # portraits are upright; a swapped eye order would give ±180°
        mapped = apply(matrix.astype(np.float64), np.array(face["landmarks"]))
        assert np.abs(mapped - ARCFACE_TEMPLATE_5).max() < 8, name


def test_template_size_and_margin():
    np.testing.assert_allclose(alignment.template_for(5), ARCFACE_TEMPLATE_5)
    np.testing.assert_allclose(alignment.template_for(4, size=224), ARCFACE_TEMPLATE_4 * 2)
    with_margin = alignment.template_for(5, size=112, margin=16)
    np.testing.assert_allclose(with_margin, ARCFACE_TEMPLATE_5 * (80 / 112) + 16, atol=1e-5)
    with pytest.raises(ToolkitError):
        alignment.template_for(3)
    with pytest.raises(ToolkitError):
        alignment.template_for(5, margin=60)


def test_crop_face_without_alignment_takes_the_box():
    image = np.zeros((200, 300, 3), np.uint8)
    image[50:150, 100:200] = 255                  # a white 100×100 square
    crop = alignment.crop_face(image, (100, 50, 200, 150), size=112)
    assert crop[2:-2, 2:-2].min() == 255
    wide = alignment.crop_face(image, (50, 50, 250, 150), size=112)   # square of side 200 around the box
    assert wide[56, 2].max() == 0 and wide[56, 56].min() == 255


def test_a_landmark_map_from_any_number_of_points_moves_with_the_face():
    # A map that picks 5 of 9 points (what bench_alignment fits for a dense landmark model): applied to a moved
    # face, the result is the moved pick, whatever the turn, scale and shift.
    rng = np.random.default_rng(3)
    mean_shape = ARCFACE_TEMPLATE_5.astype(np.float64)[rng.integers(0, 5, 9)] + rng.normal(0, 6, (9, 2))
    pick = [4, 0, 7, 2, 5]
    weights = np.zeros((18, 10))
    for row, point in enumerate(pick):
        weights[2 * point, 2 * row] = weights[2 * point + 1, 2 * row + 1] = 1
    model = dict(mean_shape=mean_shape, x_mean=np.zeros(18), y_mean=np.zeros(10), weights=weights)
    np.testing.assert_allclose(alignment.apply_landmark_map(mean_shape, model), mean_shape[pick], atol=1e-4)
    truth = similarity_matrix(40, 0.3, -20, 600)
    np.testing.assert_allclose(alignment.apply_landmark_map(apply(truth, mean_shape), model),
                               apply(truth, mean_shape[pick]), atol=1e-3)
