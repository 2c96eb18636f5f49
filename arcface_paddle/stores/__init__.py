"""Gallery stores: one gallery interface over ``index.bin``, SQLite and Milvus, chosen by path or URI.

    from arcface_paddle.stores import GalleryInfo, open_store
    store = open_store("data/gallery.db", GalleryInfo(model_id, "aligned", 128))
    store.add_faces("Grace Hopper", embeddings)
    store.match(query_embeddings, threshold=0.4, top_k=5)      # list[Match]: name or "unknown"

Dependencies point one way: core → pipeline.gallery (the index.bin format) and pipeline.gallery_vote →
stores → pipeline.analyzer / gallery_builder → service → CLIs.
"""
from arcface_paddle.stores.base import FaceRecord, GalleryInfo, GalleryStore, NewFace, SubjectSummary
from arcface_paddle.stores.errors import (
    ConflictError,
    GalleryError,
    IncompatibleGalleryError,
    InvalidValueError,
    NotFoundError,
    UnsupportedOperationError,
)
from arcface_paddle.stores.index_file import IndexFileStore
from arcface_paddle.stores.uri import BACKENDS, backend_of, open_store, read_gallery

__all__ = ["BACKENDS", "ConflictError", "FaceRecord", "GalleryError", "GalleryInfo", "GalleryStore",
           "IncompatibleGalleryError", "IndexFileStore", "InvalidValueError", "NewFace", "NotFoundError",
           "SubjectSummary", "UnsupportedOperationError", "backend_of", "open_store", "read_gallery"]
