"""Image decoding and the recognition input transform shared by every dataset (reader → transform)."""
from __future__ import annotations

import cv2
import numpy as np

from arcface_paddle.core.images import normalize_rgb_uint8
from arcface_paddle.preprocessing import REC_IMAGE_SIZE, TRAIN_MEAN, TRAIN_STD


def resize_to(image: np.ndarray, size: int = REC_IMAGE_SIZE) -> np.ndarray:
    """Resize an RGB image to size×size unless it already is (area filter when shrinking)."""
    h, w = image.shape[:2]
    if h == size and w == size:
        return image
    interpolation = cv2.INTER_AREA if h > size or w > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def to_model_input(image_rgb: np.ndarray, train: bool, size: int = REC_IMAGE_SIZE) -> np.ndarray:
    """RGB uint8 → CHW float32 normalised; a random horizontal flip when training.

    The flip draws from numpy's global generator, which paddle.io.DataLoader seeds differently
    in each worker process.
    """
    image = resize_to(image_rgb, size)
    if train and np.random.random() < 0.5:
        image = image[:, ::-1]
    return normalize_rgb_uint8(image, TRAIN_MEAN, TRAIN_STD)
