"""Image decoding and the recognition input transform shared by every dataset (reader → transform)."""
from __future__ import annotations

import cv2
import numpy as np

from ..errors import ToolkitError
from ..preprocessing import REC_IMAGE_SIZE, normalize_rgb_uint8


def decode_image(data: bytes, source: str) -> np.ndarray:
    """Encoded image bytes → H×W×3 uint8 RGB; an undecodable image raises ToolkitError naming ``source``."""
    buf = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if image is None:
        raise ToolkitError(f"{source}: cannot decode image ({len(data)} bytes)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


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
    return normalize_rgb_uint8(image)
