"""BlazeFace network (short-range 128×128 and full-range 192×192), layer for layer as MediaPipe's graphs.

``BlazeFace(variant)`` takes NCHW float32 RGB in [-1, 1] and returns, exactly like the tflite graphs,
``(regressors N×A×16, score_logits N×A×1)``: per anchor the box centre offset, size and 6 keypoints
in input pixels relative to the anchor (see :func:`blazeface_paddle.network.decode.decode`), and one
raw score logit.  Anchors are ordered row-major over each head's grid with the per-cell anchors
innermost, heads concatenated in ``variant.head_stages`` order — the order of
:func:`blazeface_paddle.network.anchors.anchors_for`.
"""
from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from blazeface_paddle.network.blocks import BlazeBlock, conv
from blazeface_paddle.network.variants import NUM_COORDS, Variant, get_variant


def _stage(in_channels: int, blocks) -> tuple:
    layers = []
    for out_channels, mid_channels, stride in blocks:
        layers.append(BlazeBlock(in_channels, out_channels, stride, mid_channels))
        in_channels = out_channels
    return nn.Sequential(*layers), in_channels


class BlazeFace(nn.Layer):
    def __init__(self, variant: str | Variant = "short_range"):
        super().__init__()
        self.variant = get_variant(variant)
        spec = self.variant
        self.stem = conv(3, spec.stem_channels, spec.stem_kernel, stride=2)
        stages, stage_channels, channels = [], [], spec.stem_channels
        for blocks in spec.stages:
            stage, channels = _stage(channels, blocks)
            stages.append(stage)
            stage_channels.append(channels)
        self.stages = nn.LayerList(stages)

        head_channels = stage_channels
        if spec.fpn:
            # Level i merges the coarser path with backbone stage -(i+2) (stride 16, 8, 4 outputs).
            tops, laterals, fpn_blocks, levels = [], [], [], []
            for index, (level_channels, mid_channels, num_blocks) in enumerate(spec.fpn):
                tops.append(conv(channels, level_channels))
                laterals.append(conv(stage_channels[-2 - index], level_channels))
                stage, channels = _stage(level_channels, [(level_channels, mid_channels, 1)] * num_blocks)
                fpn_blocks.append(stage)
                levels.append(channels)
            self.fpn_top = nn.LayerList(tops)
            self.fpn_lateral = nn.LayerList(laterals)
            self.fpn_blocks = nn.LayerList(fpn_blocks)
            head_channels = levels
        self.classifiers = nn.LayerList(
            [conv(head_channels[s], n) for s, n in zip(spec.head_stages, spec.anchors_per_cell)])
        self.regressors = nn.LayerList(
            [conv(head_channels[s], n * NUM_COORDS) for s, n in zip(spec.head_stages, spec.anchors_per_cell)])

    def features(self, x) -> list:
        """Feature maps the heads read, in head order."""
        x = F.relu(self.stem(x))
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        if self.variant.fpn:
            levels = []
            for index, (top, lateral, blocks) in enumerate(zip(self.fpn_top, self.fpn_lateral, self.fpn_blocks)):
                # tflite's RESIZE_BILINEAR: align_corners=False, half_pixel_centers=True == align_mode 0.
                # Target size, not scale_factor=2: a float scale attribute breaks oneDNN (PIR) and ONNX export.
                skip = F.relu(lateral(outputs[-2 - index]))
                up = F.interpolate(F.relu(top(x)), size=skip.shape[2:], mode="bilinear", align_corners=False,
                                   align_mode=0)
                x = blocks(skip + up)
                levels.append(x)
            outputs = levels
        return [outputs[s] for s in self.variant.head_stages]

    def forward(self, x):
        scores, boxes = [], []
        for feature, classifier, regressor in zip(self.features(x), self.classifiers, self.regressors):
            # NCHW → NHWC before flattening: anchors run row-major with the per-cell anchors innermost.
            scores.append(classifier(feature).transpose([0, 2, 3, 1]).reshape([0, -1, 1]))
            boxes.append(regressor(feature).transpose([0, 2, 3, 1]).reshape([0, -1, NUM_COORDS]))
        if len(scores) == 1:
            return boxes[0], scores[0]
        return paddle.concat(boxes, axis=1), paddle.concat(scores, axis=1)
