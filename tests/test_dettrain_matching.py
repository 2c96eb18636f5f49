"""Anchor matching, target encoding (the exact inverse of BLAZE's decode) and the detection loss."""
import numpy as np
import paddle
import pytest

from blazeface_paddle.network.anchors import anchors_for
from blazeface_paddle.network.decode import decode
from blazeface_paddle.training.anchor_matching import (
    IGNORE,
    NEGATIVE,
    POSITIVE,
    AnchorMatcher,
    encode,
    initialize_heads,
    match_anchors,
    matching_anchor_boxes,
)
from blazeface_paddle.training.loss import LossWeights, detection_loss, hard_negative_mask


@pytest.mark.parametrize("variant", ["short_range", "full_range"])
def test_encode_decode_round_trip(variant):
    anchors = anchors_for(variant)
    size = 128 if variant == "short_range" else 192
    rng = np.random.default_rng(0)
    chosen = rng.choice(len(anchors), 50, replace=False)
    top_left = rng.uniform(0, size * 0.6, (50, 2))
    boxes = np.concatenate([top_left, top_left + rng.uniform(8, size * 0.4, (50, 2))], axis=1).astype(np.float32)
    keypoints = rng.uniform(0, size, (50, 6, 2)).astype(np.float32)
    raw = encode(boxes, keypoints, anchors[chosen], size)
    decoded_boxes, decoded_points = decode(raw, anchors[chosen], size)
    np.testing.assert_allclose(decoded_boxes * size, boxes, atol=1e-3)
    np.testing.assert_allclose(decoded_points * size, keypoints, atol=1e-3)


def test_encode_with_non_unit_anchor_sizes_inverts_decode():
    anchors = np.array([[0.5, 0.5, 0.25, 0.5], [0.1, 0.9, 2.0, 1.0]], np.float32)
    boxes = np.array([[40, 50, 80, 100], [0, 90, 30, 128]], np.float32)
    points = np.full((2, 6, 2), 64.0, np.float32)
    decoded_boxes, decoded_points = decode(encode(boxes, points, anchors, 128), anchors, 128)
    np.testing.assert_allclose(decoded_boxes * 128, boxes, atol=1e-3)
    np.testing.assert_allclose(decoded_points * 128, points, atol=1e-3)


def test_matching_by_iou_with_best_anchor_fallback():
    anchors = np.array([[0, 0, 10, 10], [0, 0, 10, 12], [20, 20, 30, 30], [50, 50, 60, 60]], np.float32)
    faces = np.array([[0, 0, 10, 10], [21, 21, 25, 25], [100, 100, 110, 110]], np.float32)
    labels, matched = match_anchors(faces, anchors, positive_iou=0.5, negative_iou=0.3)
    assert labels.tolist() == [POSITIVE, POSITIVE, POSITIVE, NEGATIVE]
    assert matched.tolist() == [0, 0, 1, -1]           # the small face still gets its best anchor (IoU 0.16)
    labels, _ = match_anchors(np.array([[0, 0, 10, 7]], np.float32), anchors, 0.8, 0.3)
    assert labels.tolist() == [POSITIVE, IGNORE, NEGATIVE, NEGATIVE]   # IoU 0.7 best → forced; 0.58 → ignored
    labels, matched = match_anchors(np.zeros((0, 4), np.float32), anchors)
    assert (labels == NEGATIVE).all() and (matched == -1).all()


def test_matcher_targets_decode_to_the_faces_and_anchor_scales():
    matcher = AnchorMatcher("short_range")
    sizes = np.unique(np.round(matcher.regression_normalizer(), 1))
    # MediaPipe SSD scales 0.1484 + 0.6016·i/3 (i = 0..3) and their geometric means with the next, × 128 px
    scales = [0.1484375 + 0.6015625 * i / 3 for i in range(4)] + [1.0]
    expected = sorted([s * 128 for s in scales[:4]] + [np.sqrt(a * b) * 128 for a, b in zip(scales, scales[1:])])
    np.testing.assert_allclose(sizes, expected, atol=0.06)
    assert len(matching_anchor_boxes("short_range")) == 896
    boxes = np.array([[10, 10, 40, 44], [60, 50, 120, 118]], np.float32)
    points = np.random.default_rng(1).uniform(10, 110, (2, 6, 2)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], bool)
    targets = matcher(boxes, points, mask)
    positive = np.where(targets.labels == POSITIVE)[0]
    assert len(positive) >= 4
    decoded, decoded_points = decode(targets.regression[positive], matcher.anchors[positive], 128)
    for box in decoded * 128:
        assert np.abs(boxes - box).max(axis=1).min() < 1e-3
    assert set(targets.keypoint_mask[positive].sum(axis=1)) <= {4.0, 6.0}


def _batch(num_anchors=896):
    matcher = AnchorMatcher("short_range")
    boxes = np.array([[30, 30, 80, 86]], np.float32)
    points = np.full((1, 6, 2), 55.0, np.float32)
    targets = matcher(boxes, points, np.ones((1, 6), bool))
    empty = matcher(np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros((0, 6), bool))
    stack = lambda name: paddle.to_tensor(np.stack([getattr(targets, name), getattr(empty, name)]))
    return matcher, stack("labels").astype("int64"), stack("regression"), stack("keypoint_mask")


def test_loss_is_zero_box_error_for_perfect_regression_and_mines_three_to_one():
    matcher, labels, regression, keypoint_mask = _batch()
    normalizer = paddle.to_tensor(matcher.regression_normalizer())
    positive = (labels.numpy() == 1)
    logits = np.where(positive, 20.0, -20.0).astype(np.float32)[..., None]
    perfect = detection_loss(regression, paddle.to_tensor(logits), labels, regression, keypoint_mask, normalizer)
    assert float(perfect["box"]) == 0 and float(perfect["keypoint"]) == 0 and float(perfect["score"]) < 1e-6
    off = regression + 10.0
    worse = detection_loss(off, paddle.to_tensor(-logits), labels, regression, keypoint_mask, normalizer)
    # hand-computed: every coordinate off by 10 px → smooth-L1 of 10 / anchor size, 4 per box, 2 per keypoint
    sizes = matcher.regression_normalizer()[positive[0]]
    per_coord = np.where(10 / sizes < 1, 0.5 * (10 / sizes) ** 2, 10 / sizes - 0.5)
    np.testing.assert_allclose(float(worse["box"]), (4 * per_coord).mean(), rtol=1e-4)
    np.testing.assert_allclose(float(worse["keypoint"]), (2 * per_coord).mean(), rtol=1e-4)
    assert float(worse["score"]) > 10
    num_pos = positive.sum(axis=1)
    losses = paddle.to_tensor(np.random.default_rng(0).uniform(0, 1, labels.shape).astype(np.float32))
    chosen = hard_negative_mask(losses, labels == 0, paddle.to_tensor(num_pos.astype(np.float32)), 3.0, 16).numpy()
    assert chosen[0].sum() == 3 * num_pos[0] and chosen[1].sum() == 16      # the faceless image: min_negatives
    negatives = losses.numpy()[0][labels.numpy()[0] == 0]
    assert np.isclose(losses.numpy()[0][chosen[0]].min(), np.sort(negatives)[-3 * num_pos[0]])   # the hardest ones


def test_loss_gradient_reaches_the_network_and_head_init_predicts_anchor_boxes():
    from blazeface_paddle.network.model import BlazeFace

    paddle.seed(0)
    model = BlazeFace("short_range")
    matcher, labels, regression, keypoint_mask = _batch()
    initialize_heads(model, matcher)
    model.eval()
    raw, logits = model(paddle.zeros([1, 3, 128, 128]))
    scores = 1 / (1 + np.exp(-logits.numpy()))
    assert np.allclose(scores, 0.01, atol=0.005)
    np.testing.assert_allclose(raw.numpy()[0, :, 2], matcher.regression_normalizer(), rtol=0.05)
    model.train()
    raw, logits = model(paddle.uniform([2, 3, 128, 128], min=-1.0, max=1.0))
    terms = detection_loss(raw, logits, labels, regression, keypoint_mask,
                           paddle.to_tensor(matcher.regression_normalizer()), LossWeights())
    terms["loss"].backward()
    assert float(paddle.abs(model.stem.weight.grad).sum()) > 0


def test_centred_iou_and_full_range_matches_small_faces_by_centre():
    from blazeface_paddle.training.anchor_matching import centred_iou

    face = np.array([[10, 10, 30, 50]], np.float32)             # 20 × 40, centre (20, 30)
    np.testing.assert_allclose(centred_iou(np.array([[20, 30], [30, 30], [45, 30]]), face)[:, 0],
                               [1.0, (10 * 40) / (2 * 800 - 10 * 40), 0.0])
    full = AnchorMatcher("full_range")
    assert full.strategy == "centre" and AnchorMatcher("short_range").strategy == "anchor_scale"
    small = np.array([[90, 90, 110, 112]], np.float32)          # 20 px at 192: 86-px anchors would give IoU 0.06
    targets = full(small, np.full((1, 6, 2), 100.0, np.float32), np.ones((1, 6), bool))
    positive = np.where(targets.labels == POSITIVE)[0]
    assert len(positive) >= 4
    decoded, _ = decode(targets.regression[positive], full.anchors[positive], 192)
    np.testing.assert_allclose(decoded * 192, np.repeat(small, len(positive), axis=0), atol=1e-3)
