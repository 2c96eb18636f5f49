"""SSD anchors as MediaPipe's ``SsdAnchorsCalculator`` builds them (pure numpy, no state).

Layers that share a stride share one feature map: their anchors are stacked per cell.  Each layer
contributes one anchor per aspect ratio plus, when ``interpolated_scale_aspect_ratio > 0``, one at the
geometric mean of its scale and the next layer's.  Cells run row-major, anchors innermost; centres are
``(index + offset) / feature_map_size``.  With ``fixed_anchor_size`` every anchor is 1×1 (the network
regresses sizes in input pixels directly), which is what both BlazeFace graphs use.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from blazeface_paddle.network.variants import get_variant


def _scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    if count == 1:
        return (min_scale + max_scale) * 0.5
    return min_scale + (max_scale - min_scale) * index / (count - 1.0)


def ssd_anchors(*, num_layers: int, min_scale: float, max_scale: float, input_size_height: int,
                input_size_width: int, anchor_offset_x: float = 0.5, anchor_offset_y: float = 0.5,
                strides, aspect_ratios=(1.0,), fixed_anchor_size: bool = False,
                interpolated_scale_aspect_ratio: float = 1.0, reduce_boxes_in_lowest_layer: bool = False
                ) -> np.ndarray:
    """A×4 float32 (cx, cy, w, h), normalised to [0, 1], in the network's output order."""
    strides = list(strides)
    if len(strides) != num_layers:
        raise ValueError(f"strides has {len(strides)} entries, num_layers is {num_layers}")
    anchors = []
    layer = 0
    while layer < num_layers:
        ratios, scales = [], []
        last = layer
        while last < num_layers and strides[last] == strides[layer]:
            scale = _scale(min_scale, max_scale, last, num_layers)
            if last == 0 and reduce_boxes_in_lowest_layer:
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                for ratio in aspect_ratios:
                    ratios.append(ratio)
                    scales.append(scale)
                if interpolated_scale_aspect_ratio > 0.0:
                    following = 1.0 if last == num_layers - 1 else _scale(min_scale, max_scale, last + 1, num_layers)
                    scales.append(math.sqrt(scale * following))
                    ratios.append(interpolated_scale_aspect_ratio)
            last += 1
        sizes = [(scale * math.sqrt(ratio), scale / math.sqrt(ratio)) for scale, ratio in zip(scales, ratios)]
        stride = strides[layer]
        rows = math.ceil(input_size_height / stride)
        cols = math.ceil(input_size_width / stride)
        for y in range(rows):
            for x in range(cols):
                cx = (x + anchor_offset_x) / cols
                cy = (y + anchor_offset_y) / rows
                for width, height in sizes:
                    anchors.append((cx, cy, 1.0, 1.0) if fixed_anchor_size else (cx, cy, width, height))
        layer = last
    return np.asarray(anchors, dtype=np.float32).reshape(-1, 4)


@functools.lru_cache(maxsize=None)
def _cached(variant_name: str) -> np.ndarray:
    result = ssd_anchors(**get_variant(variant_name).anchor_options)
    result.setflags(write=False)
    return result


def anchors_for(variant) -> np.ndarray:
    """Anchors of a BlazeFace variant (name or Variant): A×4 float32 (cx, cy, w, h) in [0, 1]."""
    return _cached(get_variant(variant).name).copy()
