"""The one image intake and output of the toolkit: files or bytes → H×W×3 uint8 RGB, and back.

``decode_image`` accepts grayscale, RGB, RGBA (alpha dropped) and 16-bit files; ``as_rgb_uint8`` does the
same for arrays (also float and bool).  Anything else is a one-line :class:`ToolkitError` naming the source.
Every reader of photos (pipeline, detector, datasets, verification sets, annotations, image2bin's check)
comes through here.

Before any pixel is decoded, the size the file *declares* in its header is read (Pillow opens lazily) and
refused above :data:`MAX_PIXELS`: a 74-byte PNG can declare 100000×100000 pixels, and decoding it would
ask for 30 GB.  Formats Pillow cannot identify are decoded by OpenCV, whose own limit is set to the same
value (``OPENCV_IO_MAX_IMAGE_PIXELS``).
"""
from __future__ import annotations

import io
import os
import re
import struct
import warnings

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.safe_io import read_file_bytes

MAX_PIXELS = 100_000_000     # 10k × 10k; bigger images are refused rather than exhausting memory
# OpenCV reads this once, at its first decode: formats Pillow does not know are held to the same limit.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))

import cv2  # noqa: E402  (after the limit above is in the environment)
import numpy as np  # noqa: E402
from PIL import Image, UnidentifiedImageError  # noqa: E402

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")   # what folders are scanned for


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


def _too_large(source: str, pixels_text: str) -> ToolkitError:
    return ToolkitError(f"{source}: image declares {pixels_text} pixels, more than the "
                        f"{MAX_PIXELS // 1_000_000} Mpx limit; downscale it first")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_NO_LENGTH = {0x01, *range(0xD0, 0xD9)}       # TEM, RST0-7, SOI: markers without a length field


def _png_or_jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR or a JPEG's SOF marker; None for anything else or anything unusual.

    Hand-written because it is the hot path of every training sample: Pillow's header parse costs ~22 µs
    (11 % of reading a 112×112 shard); this costs ~2 µs.  Pillow reads every other header (and these,
    whenever this returns None); tests/test_hostile_data.py compares both on real photos.
    """
    if data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:2] != b"\xff\xd8":
        return None
    position, end = 2, min(len(data), 1 << 20)      # a real JPEG names its size within its first headers
    while position + 9 <= end:
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:                              # fill byte
            position += 1
        elif marker in _JPEG_NO_LENGTH:
            position += 2
        elif marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[position + 5:position + 9])
            return (width, height) if width and height else None
        else:
            position += 2 + struct.unpack(">H", data[position + 2:position + 4])[0]
    return None


def declared_size(data: bytes, source: str = "image") -> tuple[int, int] | None:
    """(width, height) the encoded image declares in its header, read without decoding any pixel.

    None when neither the PNG/JPEG fast path nor Pillow recognises the header (OpenCV may still decode it,
    under its own limit).  Raises ToolkitError when the declared size is above :data:`MAX_PIXELS`.
    """
    size = _png_or_jpeg_size(data)
    if size is not None:
        if size[0] * size[1] > MAX_PIXELS:
            raise _too_large(source, f"{size[0]}×{size[1]}")
        return size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Image.DecompressionBombError as error:      # Pillow's own limit (~179 Mpx) is above ours
        found = re.search(r"\((\d+) pixels\)", str(error))
        raise _too_large(source, f"{int(found.group(1)):,}" if found else "too many") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, struct.error):
        # a header Pillow cannot parse: OpenCV decides below
        return None
    if width * height > MAX_PIXELS:
        raise _too_large(source, f"{width}×{height}")
    return int(width), int(height)


def decode_image(data, source: str) -> np.ndarray:
    """Encoded image bytes → H×W×3 uint8 RGB; undecodable or oversized data is a ToolkitError naming ``source``."""
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    if not buffer.size:
        raise ToolkitError(f"{source}: not a readable image (empty file)")
    declared_size(buffer.tobytes() if isinstance(data, np.ndarray) else data, source)
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        if "CV_IO_MAX_IMAGE" in str(error):
            raise _too_large(source, "too many") from None
        raise ToolkitError(f"{source}: not a readable image (OpenCV: {str(error).strip().splitlines()[-1]})") from None
    if image is None:
        raise ToolkitError(f"{source}: not a readable image (corrupt or unsupported format)")
    return from_opencv(image, source)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a photo from disk as H×W×3 uint8 RGB (grayscale, RGBA and 16-bit files included)."""
    path = os.fspath(path)
    return decode_image(read_file_bytes(path, "image file"), path)


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
