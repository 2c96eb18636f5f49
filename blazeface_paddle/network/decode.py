"""Decoding raw BlazeFace outputs: pure numpy functions (MediaPipe's TensorsToDetectionsCalculator).

Raw regressors per anchor are ``[dx, dy, w, h, k0x, k0y, ..., k5x, k5y]`` in input pixels; the
centre and keypoints are offsets from the anchor centre, scaled by the anchor size (1 for BlazeFace's
fixed-size anchors).  Scores are logits clipped to ±``score_clipping`` then passed through a sigmoid.
"""
from __future__ import annotations

import numpy as np

from blazeface_paddle.network.variants import NUM_COORDS


def _size_hw(input_size) -> tuple:
    if np.isscalar(input_size):
        return float(input_size), float(input_size)
    height, width = input_size
    return float(height), float(width)


def decode(regressors, anchors, input_size) -> tuple:
    """Boxes ``…×A×4`` (x1, y1, x2, y2) and keypoints ``…×A×6×2`` (x, y), normalised to [0, 1] of the input.

    ``regressors``: ``…×A×16`` raw network output (leading batch axes allowed); ``anchors``: A×4
    (cx, cy, w, h) normalised; ``input_size``: the network input size in pixels (int or (h, w)) —
    MediaPipe's x/y/w/h scales.
    """
    regressors = np.asarray(regressors, dtype=np.float32)
    anchors = np.asarray(anchors, dtype=np.float32)
    if regressors.shape[-1] != NUM_COORDS or regressors.shape[-2] != anchors.shape[0]:
        raise ValueError(f"regressors {regressors.shape} do not match {anchors.shape[0]} anchors × {NUM_COORDS}")
    height, width = _size_hw(input_size)
    scale = np.array([width, height], dtype=np.float32)
    centre, anchor_size = anchors[:, :2], anchors[:, 2:]
    box_centre = regressors[..., 0:2] / scale * anchor_size + centre
    box_size = regressors[..., 2:4] / scale * anchor_size
    boxes = np.concatenate([box_centre - box_size / 2, box_centre + box_size / 2], axis=-1)
    points = regressors[..., 4:].reshape(regressors.shape[:-1] + (-1, 2))
    keypoints = points / scale * anchor_size[:, None, :] + centre[:, None, :]
    return boxes.astype(np.float32), keypoints.astype(np.float32)


def scores_from_logits(logits, score_clipping: float = 100.0) -> np.ndarray:
    """Sigmoid of clipped logits; a trailing axis of size 1 is dropped (…×A×1 → …×A)."""
    logits = np.asarray(logits, dtype=np.float32)
    if logits.ndim and logits.shape[-1] == 1:
        logits = logits[..., 0]
    clipped = np.clip(logits, -score_clipping, score_clipping)
    return (1.0 / (1.0 + np.exp(-clipped.astype(np.float64)))).astype(np.float32)
