"""Tiling for small faces in large photos (pure functions).

A 192×192 network sees a 4000-pixel photo at 1/20 scale, where a 60-pixel face becomes 3 pixels.
Running the detector on the whole image plus overlapping square tiles finds those faces; detections
from all windows are then merged.  A tile detection whose box touches a border the tile shares with
the rest of the image is dropped: the face was cut by the tile, and the overlap guarantees a
neighbouring tile (or the whole-image pass) sees it whole.
"""
from __future__ import annotations

import math

import numpy as np

from blazeface_paddle.inference.nms import weighted_nms

BORDER_MARGIN = 2.0     # pixels: a box this close to an inner tile edge counts as cut


def _starts(length: int, tile: int, step: int) -> list:
    if length <= tile:
        return [0]
    count = math.ceil((length - tile) / step) + 1
    # spread the tiles evenly so the last one ends exactly at the border
    return sorted({int(round(i * (length - tile) / (count - 1))) for i in range(count)})


def tile_windows(height: int, width: int, tile_size: int, overlap: float = 0.25) -> list:
    """Windows (x0, y0, x1, y1): the whole image first, then tile_size squares overlapping by ``overlap``."""
    if tile_size < 16:
        raise ValueError(f"tile_size must be at least 16 pixels, got {tile_size}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"tile overlap must be in [0, 1), got {overlap}")
    windows = [(0, 0, width, height)]
    if height <= tile_size and width <= tile_size:
        return windows
    step = max(1, int(tile_size * (1.0 - overlap)))
    for y0 in _starts(height, tile_size, step):
        for x0 in _starts(width, tile_size, step):
            windows.append((x0, y0, min(x0 + tile_size, width), min(y0 + tile_size, height)))
    return windows


def _cut_by_tile(boxes: np.ndarray, window: tuple, height: int, width: int) -> np.ndarray:
    """Mask of boxes (window pixels) touching an edge of the window that is inside the image."""
    x0, y0, x1, y1 = window
    w, h = x1 - x0, y1 - y0
    cut = np.zeros(len(boxes), dtype=bool)
    if x0 > 0:
        cut |= boxes[:, 0] <= BORDER_MARGIN
    if y0 > 0:
        cut |= boxes[:, 1] <= BORDER_MARGIN
    if x1 < width:
        cut |= boxes[:, 2] >= w - BORDER_MARGIN
    if y1 < height:
        cut |= boxes[:, 3] >= h - BORDER_MARGIN
    return cut


def merge_tiles(results, height: int, width: int, nms_threshold: float = 0.3) -> tuple:
    """Merge per-window detections [(window, (boxes, keypoints, scores)), ...] in window pixels.

    Returns (boxes K×4, keypoints K×P×2, scores K) in image pixels after weighted NMS.
    """
    all_boxes, all_points, all_scores = [], [], []
    for window, (boxes, keypoints, scores) in results:
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        keypoints = np.asarray(keypoints, np.float32)
        keep = ~_cut_by_tile(boxes, window, height, width)
        offset = np.array(window[:2], np.float32)
        all_boxes.append(boxes[keep] + np.tile(offset, 2))
        all_points.append(keypoints[keep] + offset)
        all_scores.append(np.asarray(scores, np.float32)[keep])
    num_points = max((p.shape[1] for p in all_points if p.size), default=6)
    boxes = np.concatenate(all_boxes) if all_boxes else np.zeros((0, 4), np.float32)
    points = (np.concatenate([p.reshape(-1, num_points, 2) for p in all_points]) if all_points
              else np.zeros((0, num_points, 2), np.float32))
    scores = np.concatenate(all_scores) if all_scores else np.zeros((0,), np.float32)
    return weighted_nms(boxes, points, scores, nms_threshold)
