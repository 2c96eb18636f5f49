"""Anchor matching and target encoding for BlazeFace training (pure numpy).

Matching: BlazeFace's anchors are "fixed size" (1×1 — the network regresses sizes in pixels), so
IoU is computed against the SSD anchor boxes MediaPipe's calculator would have built *without*
``fixed_anchor_size`` (strategy ``anchor_scale``; the per-layer scales are 19–111 px for the short-range
model).  The full-range model has a single anchor scale (86 px at 192), useless for telling faces of
20 px apart, so it matches by ``centre``: the IoU of a face with itself moved onto the anchor centre.
An anchor is positive when its IoU with a face reaches ``positive_iou``, negative below
``negative_iou`` (the band between is ignored), and every face also claims its single best anchor so
no face goes unlearned.

Encoding is the exact inverse of :func:`blazeface_paddle.network.decode.decode`: box centre and
keypoints as offsets from the anchor centre, box size as is, all in input pixels divided by the
anchor's (fixed) size.
"""
from __future__ import annotations

import dataclasses
from typing import Tuple

import numpy as np

from arcface_paddle.core.boxes import box_iou
from arcface_paddle.core.errors import ToolkitError
from blazeface_paddle.network.anchors import anchors_for, ssd_anchors
from blazeface_paddle.network.variants import NUM_COORDS, get_variant

POSITIVE, IGNORE, NEGATIVE = 1, -1, 0
MATCHING_STRATEGIES = ("anchor_scale", "centre")


def matching_anchor_boxes(variant) -> np.ndarray:
    """A×4 ``x1 y1 x2 y2`` normalised: the SSD scale of each anchor, in the network's anchor order."""
    options = dict(get_variant(variant).anchor_options, fixed_anchor_size=False)
    anchors = ssd_anchors(**options)
    centre, half = anchors[:, :2], anchors[:, 2:] / 2
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)


def match_anchors(gt_boxes: np.ndarray, anchor_boxes: np.ndarray, positive_iou: float = 0.5,
                  negative_iou: float = 0.35) -> Tuple[np.ndarray, np.ndarray]:
    """Label anchors POSITIVE / IGNORE / NEGATIVE and give each positive its face index.

    ``gt_boxes`` N×4 and ``anchor_boxes`` A×4 in the same units.  Returns (labels A int8,
    matched_face A int64, -1 where not positive).
    """
    return label_anchors(box_iou(anchor_boxes, gt_boxes) if len(gt_boxes) else np.zeros((len(anchor_boxes), 0)),
                         positive_iou, negative_iou)


def centred_iou(anchor_centres: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """A×N IoU of each face with a copy of itself moved onto each anchor centre: how well an anchor sits
    inside a face, whatever the face's size (for single-scale anchor sets such as full-range's)."""
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    size = gt_boxes[:, 2:] - gt_boxes[:, :2]
    centre = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
    offset = np.abs(np.asarray(anchor_centres, np.float64)[:, None, :] - centre[None])     # A×N×2
    overlap = np.prod((size[None] - offset).clip(min=0), axis=2)
    area = np.prod(size, axis=1)[None]
    return overlap / np.maximum(2 * area - overlap, 1e-12)


def label_anchors(ious: np.ndarray, positive_iou: float, negative_iou: float) -> Tuple[np.ndarray, np.ndarray]:
    """Labels and matched faces from an A×N anchor/face IoU matrix (see :func:`match_anchors`)."""
    num_anchors, num_faces = ious.shape
    labels = np.full(num_anchors, NEGATIVE, np.int8)
    matched = np.full(num_anchors, -1, np.int64)
    if num_faces == 0:
        return labels, matched
    best_face = ious.argmax(axis=1)
    best_iou = ious[np.arange(num_anchors), best_face]
    labels[best_iou >= negative_iou] = IGNORE
    positive = best_iou >= positive_iou
    labels[positive], matched[positive] = POSITIVE, best_face[positive]
    # Each face keeps its best anchor, even when that IoU is low (small or odd-shaped faces);
    # faces processed from the largest overlap so a contested anchor goes to the face it fits best.
    best_anchor = ious.argmax(axis=0)
    for face in np.argsort(-ious[best_anchor, np.arange(num_faces)]):
        anchor = best_anchor[face]
        if ious[anchor, face] > 0:
            labels[anchor], matched[anchor] = POSITIVE, face
    return labels, matched


def encode(boxes: np.ndarray, keypoints: np.ndarray, anchors: np.ndarray, input_size: int) -> np.ndarray:
    """Raw regressor targets A×16 for boxes A×4 (``x1 y1 x2 y2``) and keypoints A×6×2 in input pixels,
    each against its own anchor (A×4 ``cx cy w h`` normalised) — the inverse of ``postprocess.decode``."""
    anchors = np.asarray(anchors, np.float32)
    scale = float(input_size)
    centre_px, size = anchors[:, :2] * scale, anchors[:, 2:]
    box_centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    box_size = boxes[:, 2:] - boxes[:, :2]
    points = (keypoints - centre_px[:, None, :]) / size[:, None, :]
    targets = np.concatenate([(box_centre - centre_px) / size, box_size / size,
                              points.reshape(len(anchors), -1)], axis=1)
    return targets.astype(np.float32)


@dataclasses.dataclass
class AnchorTargets:
    """Per-anchor training targets of one image (all arrays have A rows)."""

    labels: np.ndarray             # A int8: POSITIVE / IGNORE / NEGATIVE
    regression: np.ndarray         # A×16 float32 raw-regressor targets (zeros where not positive)
    keypoint_mask: np.ndarray      # A×6 float32: 1 where the matched face's keypoint is annotated


class AnchorMatcher:
    """Turns one image's faces (input pixels) into :class:`AnchorTargets` for a BlazeFace variant."""

    def __init__(self, variant="short_range", positive_iou: float = 0.5, negative_iou: float = 0.35,
                 strategy: str = "auto"):
        self.variant = get_variant(variant)
        self.anchors = anchors_for(self.variant)
        self.anchor_boxes = matching_anchor_boxes(self.variant)
        self.positive_iou, self.negative_iou = positive_iou, negative_iou
        self.input_size = self.variant.input_size
        if strategy == "auto":      # one anchor scale (full-range: 86 px) cannot tell a 20-px face by IoU
            scales = np.unique(np.round(self.anchor_boxes[:, 2] - self.anchor_boxes[:, 0], 5))
            strategy = "anchor_scale" if len(scales) > 1 else "centre"
        if strategy not in MATCHING_STRATEGIES:
            raise ToolkitError(f"matching strategy {strategy!r}: choose one of auto, {', '.join(MATCHING_STRATEGIES)}")
        self.strategy = strategy

    @property
    def num_anchors(self) -> int:
        return len(self.anchors)

    def __call__(self, boxes: np.ndarray, keypoints: np.ndarray, keypoint_mask: np.ndarray) -> AnchorTargets:
        num_anchors = self.num_anchors
        faces = np.asarray(boxes, np.float32) / self.input_size
        if self.strategy == "centre":
            labels, matched = label_anchors(centred_iou(self.anchors[:, :2], faces), self.positive_iou,
                                            self.negative_iou)
        else:
            labels, matched = match_anchors(faces, self.anchor_boxes, self.positive_iou, self.negative_iou)
        regression = np.zeros((num_anchors, NUM_COORDS), np.float32)
        point_mask = np.zeros((num_anchors, self.variant.num_keypoints), np.float32)
        positive = np.where(labels == POSITIVE)[0]
        if len(positive):
            faces = matched[positive]
            regression[positive] = encode(boxes[faces], keypoints[faces], self.anchors[positive], self.input_size)
            point_mask[positive] = keypoint_mask[faces]
        return AnchorTargets(labels, regression, point_mask)

    def regression_normalizer(self) -> np.ndarray:
        """A float32: each anchor's SSD size in input pixels; the loss divides regression errors by it so
        a few pixels matter as much to a small anchor as tens of pixels to a large one."""
        sizes = self.anchor_boxes[:, 2] - self.anchor_boxes[:, 0]
        return (sizes * self.input_size / self.anchors[:, 2]).astype(np.float32)


# Where a face's keypoints sit relative to its box centre, in box widths/heights (MediaPipe order;
# the person's right eye is on the image left).  Starting values for the regression head only.
KEYPOINT_PRIOR = np.array([[-0.18, -0.12], [0.18, -0.12], [0.0, 0.05], [0.0, 0.24], [-0.45, 0.0], [0.45, 0.0]],
                          np.float32)
SCORE_PRIOR = 0.01           # initial face probability of every anchor (RetinaNet's prior)


def initialize_heads(layer, matcher: AnchorMatcher, weight_std: float = 0.01) -> None:
    """Start a from-scratch BlazeFace near a sensible answer: each regression head predicts its anchor's
    SSD-size box with keypoints at :data:`KEYPOINT_PRIOR`, each score head a face probability of
    :data:`SCORE_PRIOR`.  The graph regresses raw pixels (sizes of 20–100), which random small weights
    would take hundreds of steps to reach."""
    import paddle  # heavy (paddle): imported on first use

    sizes = matcher.regression_normalizer()
    first = 0
    for regressor, classifier, per_cell in zip(layer.regressors, layer.classifiers, layer.variant.anchors_per_cell):
        bias = np.zeros((per_cell, NUM_COORDS), np.float32)
        anchor_sizes = sizes[first:first + per_cell]              # the first cell's anchors: one per slot
        bias[:, 2] = bias[:, 3] = anchor_sizes
        bias[:, 4:] = (KEYPOINT_PRIOR[None] * anchor_sizes[:, None, None]).reshape(per_cell, -1)
        grid = (matcher.input_size // _head_stride(layer, regressor)) ** 2
        first += grid * per_cell
        for conv, value in ((regressor, bias.reshape(-1)),
                            (classifier, np.full(per_cell, -np.log((1 - SCORE_PRIOR) / SCORE_PRIOR), np.float32))):
            conv.weight.set_value(paddle.normal(0.0, weight_std, conv.weight.shape).astype(conv.weight.dtype))
            conv.bias.set_value(paddle.to_tensor(value, dtype=conv.bias.dtype))


def _head_stride(layer, regressor) -> int:
    """Stride of the feature map a head reads (from the anchor options: heads follow stride order)."""
    strides = sorted(set(layer.variant.anchor_options["strides"]))
    return strides[list(layer.regressors).index(regressor)]
