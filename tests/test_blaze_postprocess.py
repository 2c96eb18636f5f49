"""Pure BlazeFace math against hand-computed values: anchors, decoding, letterbox, NMS, tiling, image intake."""
import numpy as np
import pytest

from arcface_paddle.core.boxes import box_iou, hard_nms
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import as_rgb_uint8
from blazeface_paddle.inference.letterbox import letterbox, letterbox_geometry
from blazeface_paddle.inference.nms import weighted_nms
from blazeface_paddle.inference.tiling import merge_tiles, tile_windows
from blazeface_paddle.network.anchors import anchors_for, ssd_anchors
from blazeface_paddle.network.decode import decode, scores_from_logits
from blazeface_paddle.network.variants import VARIANTS, get_variant


def test_short_range_anchors_match_mediapipe_layout():
    anchors = anchors_for("short_range")
    assert anchors.shape == (896, 4)
    # stride 8: 16×16 cells, 2 anchors per cell, centres at (i + 0.5) / 16
    np.testing.assert_allclose(anchors[0], [0.5 / 16, 0.5 / 16, 1, 1])
    np.testing.assert_allclose(anchors[1], anchors[0])
    np.testing.assert_allclose(anchors[2], [1.5 / 16, 0.5 / 16, 1, 1])
    np.testing.assert_allclose(anchors[2 * 16], [0.5 / 16, 1.5 / 16, 1, 1])
    # stride 16 (three layers merged): 8×8 cells, 6 anchors per cell, from index 512
    np.testing.assert_allclose(anchors[512:518], np.tile([[0.5 / 8, 0.5 / 8, 1, 1]], (6, 1)))
    np.testing.assert_allclose(anchors[-1], [7.5 / 8, 7.5 / 8, 1, 1])


def test_full_range_anchors_one_per_cell_on_48_grid():
    anchors = anchors_for("full_range")
    assert anchors.shape == (2304, 4)
    np.testing.assert_allclose(anchors[1], [1.5 / 48, 0.5 / 48, 1, 1])
    np.testing.assert_allclose(anchors[48], [0.5 / 48, 1.5 / 48, 1, 1])
    assert anchors_for(get_variant("full_range")).shape[0] == 2304


def test_ssd_anchor_sizes_when_not_fixed():
    # two layers with different strides: scales 0.2 and 0.8; interpolated sqrt(0.2*0.8)=0.4 and sqrt(0.8*1)
    anchors = ssd_anchors(num_layers=2, min_scale=0.2, max_scale=0.8, input_size_height=32, input_size_width=32,
                          strides=[16, 32], aspect_ratios=[1.0, 4.0], fixed_anchor_size=False,
                          interpolated_scale_aspect_ratio=1.0)
    assert anchors.shape == (2 * 2 * 3 + 1 * 1 * 3, 4)
    np.testing.assert_allclose(anchors[0], [0.25, 0.25, 0.2, 0.2], rtol=1e-6)
    np.testing.assert_allclose(anchors[1], [0.25, 0.25, 0.4, 0.1], rtol=1e-6)      # ratio 4: w×2, h÷2
    np.testing.assert_allclose(anchors[2], [0.25, 0.25, 0.4, 0.4], rtol=1e-6)
    np.testing.assert_allclose(anchors[-1, 2], np.sqrt(0.8), rtol=1e-6)


def test_unknown_variant_is_a_toolkit_error():
    with pytest.raises(ToolkitError, match="unknown BlazeFace variant"):
        get_variant("long_range")
    assert set(VARIANTS) == {"short_range", "full_range"}


def test_decode_hand_values():
    anchors = np.array([[0.5, 0.5, 1.0, 1.0], [0.25, 0.75, 0.5, 0.5]], np.float32)
    raw = np.zeros((2, 16), np.float32)
    raw[0, :4] = [16, -32, 64, 32]                 # input 128: dx 0.125, dy -0.25, w 0.5, h 0.25
    raw[0, 4:6] = [-64, 64]                        # keypoint 0 at anchor centre + (-0.5, 0.5)
    raw[1, :4] = [0, 0, 64, 128]                   # anchor 1 is half-sized: w 0.25, h 0.5
    boxes, keypoints = decode(raw, anchors, 128)
    np.testing.assert_allclose(boxes[0], [0.375, 0.125, 0.875, 0.375], atol=1e-6)
    np.testing.assert_allclose(keypoints[0, 0], [0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(keypoints[0, 1], [0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(boxes[1], [0.125, 0.5, 0.375, 1.0], atol=1e-6)
    assert keypoints.shape == (2, 6, 2)
    batched, _ = decode(raw[None].repeat(3, axis=0), anchors, (128, 128))
    np.testing.assert_allclose(batched[2], boxes)
    with pytest.raises(ValueError):
        decode(raw[:1], anchors, 128)


def test_scores_clip_then_sigmoid():
    scores = scores_from_logits(np.array([[0.0], [1000.0], [-1000.0], [np.log(3.0)]], np.float32), 100.0)
    expected = [0.5, 1 / (1 + np.exp(-100)), 1 / (1 + np.exp(100)), 0.75]
    np.testing.assert_allclose(scores, expected, rtol=1e-6, atol=1e-30)


def test_letterbox_keeps_aspect_and_maps_back():
    image = np.full((100, 200, 3), 255, np.uint8)
    canvas, box = letterbox(image, 128)
    assert canvas.shape == (128, 128, 3) and (box.new_width, box.new_height) == (128, 64)
    assert (box.pad_x, box.pad_y) == (0, 32)
    assert canvas[31].max() == 0 and canvas[32].min() == 255 and canvas[95].min() == 255 and canvas[96].max() == 0
    # the image's corners, in normalised network coordinates, map back to pixel corners
    corners = np.array([[0.0, 32 / 128, 1.0, 96 / 128]], np.float32)
    np.testing.assert_allclose(box.to_pixels(corners), [[0, 0, 200, 100]], atol=1e-4)
    np.testing.assert_allclose(box.to_pixels(np.array([[0.5, 0.5]])), [[100, 50]], atol=1e-4)
    tall = letterbox_geometry(300, 100, 192)
    assert (tall.new_width, tall.new_height, tall.pad_x, tall.pad_y) == (64, 192, 64, 0)


def test_iou_and_hard_nms():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 0, 0]], np.float32)
    np.testing.assert_allclose(box_iou(boxes[0], boxes)[0], [1.0, 90 / 110, 0.0, 0.0], rtol=1e-6)
    keep = hard_nms(boxes[:3], np.array([0.6, 0.9, 0.7]), iou_threshold=0.3)
    assert keep.tolist() == [1, 2]
    assert hard_nms(boxes[:3], np.array([0.6, 0.9, 0.7]), iou_threshold=0.95).tolist() == [1, 2, 0]


def test_weighted_nms_blends_overlaps_by_score():
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60]], np.float32)
    keypoints = np.array([[[0, 0]], [[4, 4]], [[55, 55]]], np.float32)
    scores = np.array([0.75, 0.25, 0.5], np.float32)
    out_boxes, out_points, out_scores = weighted_nms(boxes, keypoints, scores, iou_threshold=0.3)
    np.testing.assert_allclose(out_boxes[0], [0.5, 0, 10.5, 10], atol=1e-6)   # 0.75·b0 + 0.25·b1
    np.testing.assert_allclose(out_points[0, 0], [1, 1], atol=1e-6)
    np.testing.assert_allclose(out_scores, [0.75, 0.5])
    np.testing.assert_allclose(out_boxes[1], boxes[2])
    empty = weighted_nms(np.zeros((0, 4)), np.zeros((0, 6, 2)), np.zeros(0))
    assert empty[0].shape == (0, 4) and empty[1].shape == (0, 6, 2)
    assert len(weighted_nms(boxes, keypoints, scores, 0.3, max_detections=1)[2]) == 1


def test_tile_windows_cover_image_with_overlap():
    windows = tile_windows(1000, 1500, 512, overlap=0.25)
    assert windows[0] == (0, 0, 1500, 1000)
    tiles = windows[1:]
    covered = np.zeros((1000, 1500), bool)
    for x0, y0, x1, y1 in tiles:
        assert x1 - x0 == 512 and y1 - y0 == 512
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    assert tile_windows(300, 200, 512) == [(0, 0, 200, 300)]
    with pytest.raises(ValueError):
        tile_windows(100, 100, 64, overlap=1.0)


def test_merge_tiles_drops_cut_faces_and_shifts():
    whole = (0, 0, 1000, 1000)
    tile = (500, 0, 1000, 500)
    face_in_tile = np.array([[100, 100, 140, 140]], np.float32)              # tile pixels
    cut_face = np.array([[0, 200, 30, 240]], np.float32)                    # touches the tile's inner left edge
    points = np.zeros((1, 6, 2), np.float32)
    results = [(whole, (np.zeros((0, 4)), np.zeros((0, 6, 2)), np.zeros(0))),
               (tile, (np.concatenate([face_in_tile, cut_face]), np.concatenate([points, points]),
                       np.array([0.9, 0.8])))]
    boxes, keypoints, scores = merge_tiles(results, 1000, 1000)
    np.testing.assert_allclose(boxes, [[600, 100, 640, 140]])
    np.testing.assert_allclose(keypoints[0, 0], [500, 0])
    np.testing.assert_allclose(scores, [0.9])


def test_image_intake_conversions_and_errors():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert as_rgb_uint8(gray).shape == (3, 4, 3) and (as_rgb_uint8(gray)[..., 2] == gray).all()
    rgba = np.dstack([np.full((2, 2, 3), 7, np.uint8), np.zeros((2, 2), np.uint8)])
    assert (as_rgb_uint8(rgba) == 7).all()
    deep = np.full((2, 2, 3), 65535, np.uint16)
    assert (as_rgb_uint8(deep) == 255).all()
    unit = np.full((2, 2, 3), 0.5, np.float32)
    assert (as_rgb_uint8(unit) == 128).all()
    bgr = np.zeros((1, 1, 3), np.uint8)
    bgr[0, 0] = [1, 2, 3]
    assert as_rgb_uint8(bgr, assume_bgr=True)[0, 0].tolist() == [3, 2, 1]
    for bad, message in [(np.zeros((4, 4, 5), np.uint8), "shape"), (np.zeros((0, 4, 3), np.uint8), "empty"),
                         (np.zeros((2, 2, 3), np.int64), "pixel type"), ("x.jpg", "numpy image"),
                         (np.full((2, 2, 3), np.nan, np.float32), "NaN")]:
        with pytest.raises(ToolkitError, match=message):
            as_rgb_uint8(bad)
