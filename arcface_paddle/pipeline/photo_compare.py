"""Two-image compare: is the largest face in one photo the same person as in the other?"""
from __future__ import annotations

from typing import Optional

import numpy as np
from PIL import Image, ImageDraw

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.finite_numbers import finite
from arcface_paddle.core.images import IMAGE_EXTENSIONS, is_image_path, read_image
from arcface_paddle.core.safe_io import check_output_file, refuse_overwriting_inputs
from arcface_paddle.pipeline.analyzer import FaceAnalyzer
from arcface_paddle.pipeline.drawing import load_font
from arcface_paddle.pipeline.faces import CompareResult
from arcface_paddle.pipeline.media_io import write_image

PANEL = 224          # each aligned crop is shown at this size
CAPTION = 56


def verdict(result: CompareResult) -> str:
    return "same person" if result.same_person else "different people"


def side_by_side(result: CompareResult, font_path: Optional[str] = None) -> np.ndarray:
    """Both aligned crops next to each other with the similarity and verdict underneath."""
    canvas = Image.new("RGB", (2 * PANEL, PANEL + CAPTION), (255, 255, 255))
    for position, crop in enumerate(result.crops):
        canvas.paste(Image.fromarray(crop).resize((PANEL, PANEL), Image.BILINEAR), (position * PANEL, 0))
    pen = ImageDraw.Draw(canvas)
    color = (0, 140, 0) if result.same_person else (200, 0, 0)
    text = f"cosine {result.similarity:.3f}  ·  {verdict(result)}"
    font = load_font(font_path, 20)
    left, top, right, bottom = pen.textbbox((0, 0), text, font=font)
    pen.text(((2 * PANEL - (right - left)) / 2 - left, PANEL + (CAPTION - (bottom - top)) / 2 - top), text,
             font=font, fill=color)
    return np.asarray(canvas)


def compare_images(image1: str, image2: str, show: Optional[str] = None, threshold: Optional[float] = None,
                   analyzer: Optional[FaceAnalyzer] = None, font: Optional[str] = None,
                   **analyzer_kwargs) -> CompareResult:
    """Compare the largest face of two image files; ``show`` writes the side-by-side picture."""
    if show:                                 # refused before any work, not after the comparison
        if not is_image_path(show):
            raise ToolkitError(f"{show}: the side-by-side picture needs an image file name "
                               f"({', '.join(IMAGE_EXTENSIONS)})")
        check_output_file(show, "side-by-side picture")
        refuse_overwriting_inputs([show], [image1, image2])
    if threshold is not None:
        finite(threshold, "threshold")
    if analyzer is None:
        for path in (image1, image2):     # a wrong path fails before the models load
            read_image(path)
        analyzer = FaceAnalyzer(**analyzer_kwargs)
    result = analyzer.compare(image1, image2, threshold=threshold)
    if show:
        write_image(show, side_by_side(result, font_path=font or analyzer.font))
    return result
