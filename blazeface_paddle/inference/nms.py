"""Weighted non-maximum suppression for face detections (hard NMS is :func:`arcface_paddle.core.boxes.hard_nms`).

Kept by hand because no library does it: MediaPipe's WEIGHTED algorithm, the default.  The best remaining
detection and every detection overlapping it by more than the threshold are blended into one, box and
keypoints averaged with the scores as weights; the blend keeps the best score.  BlazeFace predicts many
near-identical boxes per face (several anchors per cell and neighbouring cells), and blending them gives
steadier boxes and keypoints than keeping one (the BlazeFace paper's "tie resolution").

Boxes are ``x1, y1, x2, y2`` in any consistent unit.
"""
from __future__ import annotations

import numpy as np

from arcface_paddle.core.boxes import box_iou


def _order(scores: np.ndarray) -> np.ndarray:
    # stable: equal scores keep input (anchor) order, so results never depend on sort internals
    return np.argsort(-np.asarray(scores, dtype=np.float32), kind="stable")


def weighted_nms(boxes, keypoints, scores, iou_threshold: float = 0.3,
                 max_detections: int | None = None) -> tuple:
    """MediaPipe-style blending NMS → (boxes K×4, keypoints K×P×2, scores K), best score first."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if keypoints.ndim != 3:                          # flat x, y pairs per detection
        keypoints = keypoints.reshape(boxes.shape[0], -1, 2)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    remaining = _order(scores)
    out_boxes, out_points, out_scores = [], [], []
    while remaining.size and (max_detections is None or len(out_scores) < max_detections):
        best = remaining[0]
        overlaps = box_iou(boxes[best], boxes[remaining])[0]
        overlaps[0] = 1.0                        # the best always joins its own group, even if degenerate
        group = remaining[overlaps > iou_threshold]
        weights = scores[group] / max(float(scores[group].sum()), 1e-12)
        out_boxes.append((boxes[group] * weights[:, None]).sum(axis=0))
        out_points.append((keypoints[group] * weights[:, None, None]).sum(axis=0))
        out_scores.append(scores[best])
        remaining = remaining[overlaps <= iou_threshold]
    num_points = keypoints.shape[1]
    if not out_scores:
        return (np.zeros((0, 4), np.float32), np.zeros((0, num_points, 2), np.float32), np.zeros((0,), np.float32))
    return (np.asarray(out_boxes, np.float32), np.asarray(out_points, np.float32), np.asarray(out_scores, np.float32))
