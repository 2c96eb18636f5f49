"""Non-maximum suppression for face detections (pure numpy).

* :func:`weighted_nms` — MediaPipe's WEIGHTED algorithm, the default: the best remaining detection
  and every detection overlapping it by more than the threshold are blended into one, box and
  keypoints averaged with the scores as weights; the blend keeps the best score.  BlazeFace predicts
  many near-identical boxes per face (several anchors per cell and neighbouring cells), and blending
  them gives steadier boxes and keypoints than keeping one (the BlazeFace paper's "tie resolution").
* :func:`hard_nms` — classic NMS returning the kept indices (training evaluation, plain behaviour).

Boxes are ``x1, y1, x2, y2`` in any consistent unit.
"""
from __future__ import annotations

import numpy as np


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box (4,) with each of ``boxes`` (N×4); empty or degenerate boxes give 0."""
    box = np.asarray(box, dtype=np.float32)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = max(float(box[2] - box[0]), 0.0) * max(float(box[3] - box[1]), 0.0)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0).astype(np.float32)


def _order(scores: np.ndarray) -> np.ndarray:
    # stable: equal scores keep input (anchor) order, so results never depend on sort internals
    return np.argsort(-np.asarray(scores, dtype=np.float32), kind="stable")


def hard_nms(boxes, scores, iou_threshold: float = 0.3, max_detections: int | None = None) -> np.ndarray:
    """Indices of the kept boxes, best score first."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    remaining = _order(scores)
    keep = []
    while remaining.size and (max_detections is None or len(keep) < max_detections):
        best = remaining[0]
        keep.append(int(best))
        overlaps = iou(boxes[best], boxes[remaining[1:]])
        remaining = remaining[1:][overlaps <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


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
        overlaps = iou(boxes[best], boxes[remaining])
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
