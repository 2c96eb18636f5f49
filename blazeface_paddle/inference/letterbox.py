"""Aspect-keeping letterbox resize into the square network input, and the way back to image pixels.

``letterbox`` scales the image to fit a square network input keeping the aspect ratio, centres it and pads
with black; the returned :class:`Letterbox` maps normalised network coordinates back to original-image pixels.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True)
class Letterbox:
    """How an image was placed in the square network input: ``input = original * scale + pad`` per axis."""
    new_width: int                             # size of the resized image inside the input
    new_height: int
    pad_x: int
    pad_y: int
    size: int                                  # network input side, pixels
    image_width: int
    image_height: int

    @property
    def scale(self) -> tuple:
        return self.new_width / self.image_width, self.new_height / self.image_height

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        """Normalised network coordinates (…×2 x, y or …×4 x1, y1, x2, y2) → original-image pixels."""
        points = np.asarray(points, dtype=np.float32)
        repeat = points.shape[-1] // 2
        pad = np.array([self.pad_x, self.pad_y] * repeat, dtype=np.float32)
        scale = np.array(list(self.scale) * repeat, dtype=np.float32)
        return ((points * self.size - pad) / scale).astype(np.float32)

def letterbox_geometry(image_height: int, image_width: int, size: int) -> Letterbox:
    scale = min(size / image_width, size / image_height)
    new_w = max(1, min(size, int(round(image_width * scale))))
    new_h = max(1, min(size, int(round(image_height * scale))))
    return Letterbox(new_width=new_w, new_height=new_h, pad_x=(size - new_w) // 2, pad_y=(size - new_h) // 2,
                     size=size, image_width=image_width, image_height=image_height)

def letterbox(image_rgb: np.ndarray, size: int) -> tuple:
    """(size×size×3 uint8 network image, Letterbox) for an H×W×3 uint8 image."""
    height, width = image_rgb.shape[:2]
    box = letterbox_geometry(height, width, size)
    shrinking = box.new_width < width or box.new_height < height
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(image_rgb, (box.new_width, box.new_height), interpolation=interpolation)
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    canvas[box.pad_y:box.pad_y + box.new_height, box.pad_x:box.pad_x + box.new_width] = resized
    return canvas, box
