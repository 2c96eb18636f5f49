"""Boxes ``x1, y1, x2, y2``: IoU and classic (hard) non-maximum suppression.

Hard NMS is OpenCV's ``cv2.dnn.NMSBoxes``; detectors that blend overlapping boxes instead (BlazeFace's weighted
NMS) build on :func:`box_iou`.
"""
from __future__ import annotations

import cv2
import numpy as np


def box_iou(boxes_a, boxes_b) -> np.ndarray:
    """IoU matrix (float64) between N×4 and M×4 boxes; empty or degenerate boxes give 0."""
    boxes_a = np.asarray(boxes_a, np.float64).reshape(-1, 4)
    boxes_b = np.asarray(boxes_b, np.float64).reshape(-1, 4)
    top_left = np.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    bottom_right = np.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    intersection = np.prod((bottom_right - top_left).clip(min=0), axis=2)
    area_a = np.prod((boxes_a[:, 2:] - boxes_a[:, :2]).clip(min=0), axis=1)
    area_b = np.prod((boxes_b[:, 2:] - boxes_b[:, :2]).clip(min=0), axis=1)
    union = area_a[:, None] + area_b[None, :] - intersection
    return np.where(union > 0, intersection / np.maximum(union, 1e-12), 0.0)


def hard_nms(boxes, scores, iou_threshold: float = 0.3, max_detections: int | None = None) -> np.ndarray:
    """Indices of the boxes kept by classic NMS, best score first (equal scores: lower index first).

    Boxes with a score of 0 or less are never kept (``cv2.dnn.NMSBoxes`` keeps scores above its threshold).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if boxes.shape[0] == 0:
        return np.zeros((0,), np.int64)
    rects = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).tolist()   # x, y, w, h
    keep = np.asarray(cv2.dnn.NMSBoxes(rects, scores.tolist(), 0.0, float(iou_threshold)), np.int64).reshape(-1)
    return keep if max_detections is None else keep[:max_detections]
