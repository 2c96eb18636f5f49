"""The two BlazeFace variants, described once: network layout, anchors and post-processing facts.

Layouts were read from MediaPipe's published graphs (``face_detection_short_range.tflite``,
``face_detection_full_range.tflite``) with the ``tflite`` flatbuffer parser; anchor and decoding
options are those of MediaPipe's ``SsdAnchorsCalculator`` / ``TensorsToDetectionsCalculator`` for
each model.  Everything else (model, anchors, import, export, predictor, training) reads this file.

Facts worth knowing, because the BlazeFace paper differs from the shipped graphs:

* both published graphs use 3×3 depthwise kernels (the paper's 5×5 are not what MediaPipe ships);
* the short-range model has single BlazeBlocks only, ReLU activations, heads on the stride-8 map
  (16×16, 2 anchors per cell) and the stride-16 map (8×8, 6 anchors per cell) — 896 anchors;
* the full-range model uses double BlazeBlocks (dw → 1×1 down → ReLU → dw → 1×1 up) down to stride 32,
  then a top-down feature pyramid (1×1 conv + ReLU on both paths, bilinear ×2 up-sampling with
  half-pixel centres, add, double blocks) back to stride 4 where one head predicts 48×48 = 2304 anchors;
* every activation is a ReLU; the stride-2 residual path is 2×2 max-pool + zero channel padding.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from arcface_paddle.core.errors import ToolkitError

# (out_channels, mid_channels or None for a single BlazeBlock, stride)
Block = tuple


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    input_size: int                      # square input, pixels
    stem_kernel: int
    stem_channels: int
    stages: tuple                        # tuple of stages, each a tuple of Block
    head_stages: tuple                   # indices of the stages (or pyramid levels) feeding heads
    anchors_per_cell: tuple              # per head, in concat order
    fpn: Optional[tuple] = None          # top-down levels: (channels, mid_channels, num_blocks), coarse → fine
    anchor_options: dict = dataclasses.field(default_factory=dict)
    score_clipping: float = 100.0        # raw logits are clipped to ±this before the sigmoid
    score_threshold: float = 0.5
    nms_threshold: float = 0.3           # IoU above which detections are blended (weighted NMS)
    num_keypoints: int = 6


# MediaPipe's keypoint order; "right" is the person's right (image left on a frontal face).
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear", "left_ear")
# Horizontal flip swaps these pairs of keypoint indices (training augmentation).
KEYPOINT_FLIP_PAIRS = ((0, 1), (4, 5))
INPUT_MEAN = [127.5, 127.5, 127.5]        # network input = (pixel - 127.5) / 127.5 ∈ [-1, 1], as MediaPipe
INPUT_STD = [127.5, 127.5, 127.5]
NUM_COORDS = 16                          # box cx, cy, w, h + 6 keypoints × (x, y)

SHORT_RANGE = Variant(
    name="short_range",
    input_size=128,
    stem_kernel=5,
    stem_channels=24,
    stages=(
        ((24, None, 1), (28, None, 1), (32, None, 2), (36, None, 1), (42, None, 1), (48, None, 2),
         (56, None, 1), (64, None, 1), (72, None, 1), (80, None, 1), (88, None, 1)),       # → 16×16×88
        ((96, None, 2), (96, None, 1), (96, None, 1), (96, None, 1), (96, None, 1)),     # → 8×8×96
    ),
    head_stages=(0, 1),
    anchors_per_cell=(2, 6),
    anchor_options=dict(
        num_layers=4, min_scale=0.1484375, max_scale=0.75, input_size_height=128, input_size_width=128,
        anchor_offset_x=0.5, anchor_offset_y=0.5, strides=[8, 16, 16, 16], aspect_ratios=[1.0],
        fixed_anchor_size=True, interpolated_scale_aspect_ratio=1.0, reduce_boxes_in_lowest_layer=False),
    score_threshold=0.5,
)

FULL_RANGE = Variant(
    name="full_range",
    input_size=192,
    stem_kernel=3,
    stem_channels=32,
    stages=(
        ((32, 8, 1), (32, 8, 1), (48, 12, 2), (48, 12, 1), (64, 16, 1)),                # → 48×48×64
        ((96, 24, 2), (128, 32, 1), (128, 32, 1)),                                       # → 24×24×128
        ((144, 36, 2), (192, 48, 1), (256, 64, 1)),                                      # → 12×12×256
        ((384, 96, 2), (384, 96, 1), (384, 96, 1), (384, 96, 1)),                        # → 6×6×384
    ),
    fpn=((96, 48, 2), (64, 32, 2), (48, 24, 1)),          # → 12×12×96, 24×24×64, 48×48×48
    head_stages=(2,),                                     # the finest pyramid level (48×48)
    anchors_per_cell=(1,),
    anchor_options=dict(
        num_layers=1, min_scale=0.1484375, max_scale=0.75, input_size_height=192, input_size_width=192,
        anchor_offset_x=0.5, anchor_offset_y=0.5, strides=[4], aspect_ratios=[1.0],
        fixed_anchor_size=True, interpolated_scale_aspect_ratio=0.0, reduce_boxes_in_lowest_layer=False),
    score_threshold=0.6,
)

VARIANTS = {SHORT_RANGE.name: SHORT_RANGE, FULL_RANGE.name: FULL_RANGE}
DEFAULT_VARIANT = "full_range"


def get_variant(variant) -> Variant:
    """``"short_range"`` / ``"full_range"`` (or a Variant) → Variant; unknown names are a ToolkitError."""
    if isinstance(variant, Variant):
        return variant
    if variant not in VARIANTS:
        raise ToolkitError(f"unknown BlazeFace variant {variant!r}; choose one of {sorted(VARIANTS)}")
    return VARIANTS[variant]
