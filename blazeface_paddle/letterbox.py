"""Image intake for the detector: any reasonable image → RGB uint8, and aspect-keeping letterbox resize.

``as_rgb_uint8`` accepts grayscale (H×W, H×W×1), RGB, RGBA (alpha dropped) and 16-bit or float images
and refuses anything else with a one-line ToolkitError.  ``letterbox`` scales the image to fit a
square network input keeping the aspect ratio, centres it and pads with black; the returned
:class:`Letterbox` maps normalised network coordinates back to original-image pixels.
"""
from __future__ import annotations

import dataclasses
import os

import cv2
import numpy as np

from arcface_paddle.errors import ToolkitError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")   # what folders are scanned for
MAX_PIXELS = 100_000_000     # 10k × 10k; bigger images are refused rather than exhausting memory


def as_rgb_uint8(image, *, source: str = "image", assume_bgr: bool = False) -> np.ndarray:
    """H×W×3 uint8 RGB view/copy of ``image`` (see module doc for what is accepted)."""
    if not isinstance(image, np.ndarray):
        raise ToolkitError(f"{source}: expected a numpy image array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ToolkitError(f"{source}: expected H×W, H×W×3 or H×W×4 pixels, got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ToolkitError(f"{source}: empty image (shape {image.shape})")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise ToolkitError(f"{source}: image of {image.shape[1]}×{image.shape[0]} pixels is larger than the "
                           f"{MAX_PIXELS // 1_000_000} Mpx limit; downscale it first")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        if not np.isfinite(image).all():
            raise ToolkitError(f"{source}: float image holds NaN or infinite values")
        high = 1.0 if image.max() <= 1.0 else 255.0      # [0, 1] floats or [0, 255] floats
        image = np.clip(image * (255.0 / high), 0, 255).round().astype(np.uint8)
    elif image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    elif image.dtype != np.uint8:
        raise ToolkitError(f"{source}: unsupported pixel type {image.dtype} (use uint8, uint16 or float)")
    if image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    image = image[:, :, :3]
    if assume_bgr:
        image = image[:, :, ::-1]
    return np.ascontiguousarray(image)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a photo from disk as H×W×3 uint8 RGB (grayscale, RGBA and 16-bit files included)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ToolkitError(f"{path}: image file not found")
    try:
        data = np.fromfile(path, dtype=np.uint8)  # works for non-ASCII paths, unlike cv2.imread
    except OSError as error:
        raise ToolkitError(f"{path}: cannot read ({error.strerror or error})") from None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise ToolkitError(f"{path}: not a readable image (corrupt or unsupported format)")
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, [2, 1, 0, 3]]
    return as_rgb_uint8(image, source=path, assume_bgr=image.ndim == 3 and image.shape[2] == 3)


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
