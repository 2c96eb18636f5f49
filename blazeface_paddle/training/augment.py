"""Training augmentation for face detection: crop keeping faces, flip, colour distortion, letterbox.

Every function takes an image (H×W×3 uint8 RGB) and its faces — boxes N×4 ``x1 y1 x2 y2`` pixels,
keypoints N×6×2 pixels, keypoint mask N×6 bool — and returns them transformed together, so boxes and
keypoints always stay on the pixels they describe.  Randomness comes from an explicit
``np.random.Generator`` (deterministic tests).  Pure numpy / cv2.
"""
from __future__ import annotations

import dataclasses
from typing import Tuple

import cv2
import numpy as np

from blazeface_paddle.inference.letterbox import Letterbox, letterbox
from blazeface_paddle.network.variants import KEYPOINT_FLIP_PAIRS, KEYPOINT_NAMES


def _flip_order() -> tuple:
    order = list(range(len(KEYPOINT_NAMES)))
    for right, left in KEYPOINT_FLIP_PAIRS:
        order[right], order[left] = left, right
    return tuple(order)


# Mirroring swaps the person's right and left: right_eye↔left_eye, right_ear↔left_ear (MediaPipe order).
FLIP_KEYPOINT_ORDER = _flip_order()

Faces = Tuple[np.ndarray, np.ndarray, np.ndarray]      # boxes, keypoints, keypoint_mask


def _select(faces: Faces, keep: np.ndarray) -> Faces:
    return tuple(array[keep] for array in faces)


def crop(image: np.ndarray, faces: Faces, x0: int, y0: int, width: int, height: int) -> Tuple[np.ndarray, Faces]:
    """Cut ``[x0, x0+width) × [y0, y0+height)``; keep faces whose centre lies inside, clip their boxes,
    and unmark keypoints that fall outside."""
    boxes, keypoints, mask = faces
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    keep = ((centres[:, 0] >= x0) & (centres[:, 0] < x0 + width) &
            (centres[:, 1] >= y0) & (centres[:, 1] < y0 + height))
    boxes, keypoints, mask = _select(faces, keep)
    offset = np.array([x0, y0], np.float32)
    boxes = boxes - np.tile(offset, 2)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    keypoints = keypoints - offset
    inside = ((keypoints[..., 0] >= 0) & (keypoints[..., 0] < width) &
              (keypoints[..., 1] >= 0) & (keypoints[..., 1] < height))
    mask = mask & inside
    keypoints = np.where(mask[..., None], keypoints, 0).astype(np.float32)
    return image[y0:y0 + height, x0:x0 + width], (boxes.astype(np.float32), keypoints, mask)


def random_crop_keeping_faces(image: np.ndarray, faces: Faces, rng: np.random.Generator,
                              scale_range=(0.3, 1.0), max_tries: int = 50) -> Tuple[np.ndarray, Faces]:
    """A random square crop (side = scale × shorter image side) that keeps at least one face centre;
    after ``max_tries`` misses the image is returned unchanged."""
    height, width = image.shape[:2]
    for _ in range(max_tries):
        side = max(1, int(round(rng.uniform(*scale_range) * min(height, width))))
        x0 = int(rng.integers(0, width - side + 1))
        y0 = int(rng.integers(0, height - side + 1))
        cropped, kept = crop(image, faces, x0, y0, side, side)
        if len(kept[0]) > 0 or len(faces[0]) == 0:
            return cropped, kept
    return image, faces


def horizontal_flip(image: np.ndarray, faces: Faces) -> Tuple[np.ndarray, Faces]:
    """Mirror the image; boxes and keypoints follow and right/left keypoints swap names."""
    boxes, keypoints, mask = faces
    width = image.shape[1]
    flipped_boxes = boxes.copy()
    flipped_boxes[:, 0], flipped_boxes[:, 2] = width - boxes[:, 2], width - boxes[:, 0]
    order = list(FLIP_KEYPOINT_ORDER)
    flipped_points = keypoints[:, order].copy()
    flipped_points[..., 0] = width - flipped_points[..., 0]
    flipped_mask = mask[:, order].copy()
    flipped_points[~flipped_mask] = 0
    return np.ascontiguousarray(image[:, ::-1]), (flipped_boxes, flipped_points, flipped_mask)


def photometric_distort(image: np.ndarray, rng: np.random.Generator, brightness: float = 32.0,
                        contrast=(0.6, 1.4), saturation=(0.6, 1.4), hue: float = 12.0,
                        probability: float = 0.5) -> np.ndarray:
    """Random brightness, contrast, saturation and hue changes, each applied with ``probability``."""
    result = image.astype(np.float32)
    if rng.random() < probability:
        result += rng.uniform(-brightness, brightness)
    if rng.random() < probability:
        result *= rng.uniform(*contrast)
    result = result.clip(0, 255).astype(np.uint8)
    change_saturation, change_hue = rng.random() < probability, rng.random() < probability
    if change_saturation or change_hue:
        hsv = cv2.cvtColor(result, cv2.COLOR_RGB2HSV).astype(np.float32)
        if change_saturation:
            hsv[..., 1] = (hsv[..., 1] * rng.uniform(*saturation)).clip(0, 255)
        if change_hue:                       # OpenCV's 8-bit hue runs 0..180
            hsv[..., 0] = (hsv[..., 0] + rng.uniform(-hue, hue)) % 180
        result = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    return result


def letterbox_faces(image: np.ndarray, faces: Faces, size: int) -> Tuple[np.ndarray, Faces, Letterbox]:
    """Resize into a size×size square with black borders exactly as the predictor does
    (:func:`blazeface_paddle.inference.letterbox.letterbox`), moving the faces along."""
    canvas, placement = letterbox(image, size)
    sx, sy = placement.scale
    pad = np.array([placement.pad_x, placement.pad_y], np.float32)
    boxes, keypoints, mask = faces
    boxes = boxes * np.array([sx, sy, sx, sy], np.float32) + np.tile(pad, 2)
    keypoints = keypoints * np.array([sx, sy], np.float32) + pad
    keypoints = np.where(mask[..., None], keypoints, 0).astype(np.float32)
    return canvas, (boxes.astype(np.float32), keypoints, mask), placement


@dataclasses.dataclass
class DetectionAugment:
    """The training transform: crop → flip → colour → letterbox → drop faces too small to learn from."""

    input_size: int = 128
    crop_probability: float = 0.8
    crop_scale: tuple = (0.3, 1.0)
    flip_probability: float = 0.5
    photometric_probability: float = 0.5
    min_face_size: float = 4.0          # pixels at the model input

    def __call__(self, image: np.ndarray, faces: Faces, rng: np.random.Generator) -> Tuple[np.ndarray, Faces]:
        if rng.random() < self.crop_probability:
            image, faces = random_crop_keeping_faces(image, faces, rng, scale_range=tuple(self.crop_scale))
        if rng.random() < self.flip_probability:
            image, faces = horizontal_flip(image, faces)
        if self.photometric_probability > 0:
            image = photometric_distort(image, rng, probability=self.photometric_probability)
        image, faces, _ = letterbox_faces(image, faces, self.input_size)
        boxes = faces[0]
        big_enough = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= self.min_face_size
        return image, _select(faces, big_enough)
