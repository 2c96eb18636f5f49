"""Detection + alignment + recognition + gallery matching: the toolkit's front door.

Modules load lazily so ``import arcface_paddle.pipeline`` stays cheap (no paddle until a model is used).
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "FaceAnalyzer": "analyzer", "Face": "analyzer", "CompareResult": "analyzer", "largest_face": "analyzer",
    "GalleryIndex": "gallery", "load_index": "gallery", "import_reference_index": "gallery",
    "align_face": "alignment", "umeyama_similarity": "alignment", "crop_face": "alignment",
    "DEFAULT_REC_THRESHOLD": "matching", "UNKNOWN": "matching", "vote": "matching",
    "draw_faces": "drawing", "read_image": "media_io",
    "build_gallery": "gallery_builder", "align_dataset": "align", "compare_images": "compare",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
