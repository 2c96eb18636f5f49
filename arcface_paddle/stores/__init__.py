"""Gallery stores: one gallery interface over ``index.bin``, SQLite and Milvus, chosen by path or URI.

    from arcface_paddle.stores import GalleryInfo, open_store
    store = open_store("data/gallery.db", GalleryInfo(model_id, "aligned", 128))
    store.add_faces("Grace Hopper", embeddings)
    store.match(query_embeddings, threshold=0.4, top_k=5)      # list[Match]: name or "unknown"

``index_format`` is the ``index.bin`` file format (also the in-memory ``GalleryIndex``), ``vote`` the top-k vote
that names a face or calls it ``unknown``, ``search`` the exact top-k every backend's in-memory side uses.
Dependencies point one way: core → stores → pipeline (FaceAnalyzer, gallery_builder) → service → CLIs.
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
