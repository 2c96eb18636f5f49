"""The one image intake and output of the toolkit: files or bytes → H×W×3 uint8 RGB, and back.

``decode_image`` accepts grayscale, RGB, RGBA (alpha dropped) and 16-bit files; ``as_rgb_uint8`` does the
same for arrays (also float and bool).  Anything else is a one-line :class:`ToolkitError` naming the source.
Every reader of photos (pipeline, detector, datasets, verification sets, annotations) comes through here.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from arcface_paddle.core.errors import ToolkitError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")   # what folders are scanned for
MAX_PIXELS = 100_000_000     # 10k × 10k; bigger images are refused rather than exhausting memory


def is_image_path(path: str) -> bool:
    return os.fspath(path).lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder: str, recursive: bool = False) -> list[str]:
    """Image files in ``folder`` (sorted); ToolkitError if the folder is missing or has no images."""
    if not os.path.isdir(folder):
        raise ToolkitError(f"{folder}: folder not found")
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found.extend(os.path.join(root, name) for name in sorted(files) if is_image_path(name))
        if not recursive:
            break
    if not found:
        raise ToolkitError(f"{folder}: no images found ({', '.join(IMAGE_EXTENSIONS)})")
    return found


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


def from_opencv(image: np.ndarray, source: str = "image") -> np.ndarray:
    """An OpenCV-decoded array (grey, BGR or BGRA, 8 or 16 bit) → H×W×3 uint8 RGB."""
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, [2, 1, 0, 3]]
    return as_rgb_uint8(image, source=source, assume_bgr=image.ndim == 3 and image.shape[2] == 3)


def decode_image(data, source: str) -> np.ndarray:
    """Encoded image bytes → H×W×3 uint8 RGB; undecodable data raises ToolkitError naming ``source``."""
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) if buffer.size else None
    if image is None:
        raise ToolkitError(f"{source}: not a readable image (corrupt or unsupported format)")
    return from_opencv(image, source)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a photo from disk as H×W×3 uint8 RGB (grayscale, RGBA and 16-bit files included)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ToolkitError(f"{path}: image file not found")
    try:
        data = np.fromfile(path, dtype=np.uint8)  # works for non-ASCII paths, unlike cv2.imread
    except OSError as error:
        raise ToolkitError(f"{path}: cannot read ({error.strerror or error})") from None
    return decode_image(data, path)


def encode_image(image_rgb: np.ndarray, extension: str = ".jpg", quality: int = 95, source: str = "image") -> bytes:
    """RGB uint8 → encoded file bytes by extension (JPEG at ``quality`` by default)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if extension.lower() in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(extension, cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ToolkitError(f"{source}: cannot encode an image with extension {extension!r}")
    return encoded.tobytes()


def normalize_rgb_uint8(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """HWC or NHWC uint8 RGB → CHW / NCHW float32, ``(x - mean) / std``."""
    images = np.asarray(images, dtype=np.float32)
    images = (images - mean) / std
    if images.ndim == 3:
        return np.ascontiguousarray(images.transpose(2, 0, 1))
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))
