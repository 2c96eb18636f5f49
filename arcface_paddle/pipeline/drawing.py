"""Drawing results: a box per face, its name (or ``unknown``) and similarity, one colour per identity.

Text is rendered with PIL from a TrueType/OpenType font, so any script the font covers (Chinese names with
a CJK font passed as ``font``) renders; the default is matplotlib's bundled DejaVuSans.ttf. The font size
follows the face size so labels stay readable on small and large faces alike.
"""
from __future__ import annotations

import colorsys
import functools
import hashlib
import os
import warnings
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.stores.vote import UNKNOWN

UNKNOWN_COLOR = (160, 160, 160)
DETECTION_COLOR = (0, 200, 255)
MIN_FONT_PX, MAX_FONT_PX = 12, 64
FONT_PER_FACE_WIDTH = 0.15   # label height as a fraction of the face box width


def default_font_path() -> str:
    import matplotlib  # heavy (paddle): imported on first use
    return os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf", "DejaVuSans.ttf")


@functools.lru_cache(maxsize=64)
def load_font(path: Optional[str], size: int) -> ImageFont.FreeTypeFont:
    path = path or default_font_path()
    try:
        return ImageFont.truetype(path, size)
    except OSError:
        raise ToolkitError(f"{path}: not a readable TrueType/OpenType font") from None


@functools.lru_cache(maxsize=8)
def _font_codepoints(path: str) -> frozenset:
    try:
        from fontTools.ttLib import TTFont  # installed with matplotlib
        with TTFont(path, fontNumber=0, lazy=True) as font:
            return frozenset(font.getBestCmap() or {})
    except Exception:                            # unusual font container: skip the coverage check
        return frozenset()


_WARNED: set = set()


def warn_missing_glyphs(text: str, font_path: Optional[str]) -> None:
    """Warn once per (font, name) when the font cannot draw some characters (e.g. Chinese with DejaVuSans)."""
    path = font_path or default_font_path()
    codepoints = _font_codepoints(path)
    # in order of appearance, each once ("中文名", not the code-point order "中名文")
    missing = list(dict.fromkeys(char for char in text
                                 if codepoints and ord(char) not in codepoints and not char.isspace()))
    if missing and (path, text) not in _WARNED:
        _WARNED.add((path, text))
        warnings.warn(f"{os.path.basename(path)} has no glyphs for {''.join(missing)!r} in {text!r}; "
                      "pass a font that covers them (--font, e.g. a Noto Sans CJK .otf)", stacklevel=3)


def identity_color(name: str) -> tuple[int, int, int]:
    """A stable, saturated colour per name (the same person gets the same colour in every image)."""
    if name == UNKNOWN:
        return UNKNOWN_COLOR
    hue = int.from_bytes(hashlib.md5(name.encode("utf-8")).digest()[:2], "big") / 65535.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(red * 255), int(green * 255), int(blue * 255)


def font_size_for(box) -> int:
    width = float(box[2]) - float(box[0])
    return int(np.clip(round(width * FONT_PER_FACE_WIDTH), MIN_FONT_PX, MAX_FONT_PX))


def label_for(face) -> str:
    """``name 0.72`` for recognised faces, ``score 0.98`` for detections only; ``#7`` added for a video track."""
    track = "" if getattr(face, "track_id", None) is None else f" #{face.track_id}"
    if face.name is None:
        return f"face {face.score:.2f}{track}"
    if face.similarity is None or np.isnan(face.similarity):
        return face.name + track
    return f"{face.name} {face.similarity:.2f}{track}"


def color_for(face) -> tuple[int, int, int]:
    """The identity's colour; an unnamed face has the detection colour, or its track's own colour."""
    if face.name is not None:
        return identity_color(face.name)
    track_id = getattr(face, "track_id", None)
    return DETECTION_COLOR if track_id is None else identity_color(f"track {track_id}")


def draw_faces(image_rgb: np.ndarray, faces: Sequence, font_path: Optional[str] = None,
               draw_keypoints: bool = True) -> np.ndarray:
    """A copy of ``image_rgb`` with every face's box, label and keypoints drawn."""
    canvas = Image.fromarray(np.ascontiguousarray(image_rgb))
    pen = ImageDraw.Draw(canvas)
    line = max(2, round(max(canvas.size) / 400))
    for face in faces:
        color = color_for(face)
        x1, y1, x2, y2 = (float(v) for v in face.box)
        pen.rectangle([x1, y1, x2, y2], outline=color, width=line)
        if draw_keypoints and face.keypoints is not None:
            radius = max(1, line)
            for x, y in np.asarray(face.keypoints).reshape(-1, 2):
                pen.ellipse([x - radius, y - radius, x + radius, y + radius], fill=color)
        text = label_for(face)
        warn_missing_glyphs(text, font_path)
        font, (left, top, right, bottom) = _fitting_font(pen, text, font_path, face.box, canvas.size[0])
        pad = max(1, font.size // 6)
        width, height = right - left + 2 * pad, bottom - top + 2 * pad
        # Label above the box (inside its top edge when the box touches the image top), kept inside the image.
        label_x = min(max(0.0, x1), max(0.0, canvas.size[0] - width))
        label_y = y1 - height if y1 - height >= 0 else max(0.0, y1)
        pen.rectangle([label_x, label_y, label_x + width, label_y + height], fill=color)
        pen.text((label_x + pad - left, label_y + pad - top), text, font=font, fill=text_color(color))
    return np.asarray(canvas)


def text_color(background) -> tuple[int, int, int]:
    """Black on light label colours, white on dark ones (ITU-R BT.601 luma)."""
    red, green, blue = background
    return (0, 0, 0) if 0.299 * red + 0.587 * green + 0.114 * blue > 140 else (255, 255, 255)


def _fitting_font(pen, text, font_path, box, image_width):
    """Font sized to the face, shrunk until the label fits the image width."""
    size = font_size_for(box)
    while True:
        font = load_font(font_path, size)
        bbox = pen.textbbox((0, 0), text, font=font)
        if bbox[2] - bbox[0] + size // 3 <= image_width or size <= MIN_FONT_PX:
            return font, bbox
        size = max(MIN_FONT_PX, int(size * 0.85))
