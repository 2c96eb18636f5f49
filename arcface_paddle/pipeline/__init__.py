"""Detection + alignment + recognition + gallery matching: the toolkit's front door.

Modules load lazily so ``import arcface_paddle.pipeline`` stays cheap (no paddle until a model is used).
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "FaceAnalyzer": "analyzer", "Face": "faces", "CompareResult": "faces", "largest_face": "faces",
    "GalleryIndex": "arcface_paddle.stores.index_format", "load_index": "arcface_paddle.stores.index_format",
    "import_reference_index": "arcface_paddle.stores.index_format",
    "align_face": "face_alignment", "umeyama_similarity": "face_alignment", "crop_face": "face_alignment",
    "DEFAULT_REC_THRESHOLD": "arcface_paddle.stores.vote", "UNKNOWN": "arcface_paddle.stores.vote",
    "vote": "arcface_paddle.stores.vote",
    "draw_faces": "drawing", "read_image": "arcface_paddle.core.images",
    "build_gallery": "gallery_builder", "align_dataset": "dataset_alignment", "compare_images": "photo_compare",
    "FaceTracker": "tracking", "VideoOptions": "video", "process_video": "video", "process_folder": "runner",
    "run_on_input": "runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        where = _EXPORTS[name]          # a module of this package, or a full module path
        module = importlib.import_module(where if "." in where else f".{where}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
