"""Which backend a gallery path or URI names, and opening it.

    gallery.db, x.sqlite, x.sqlite3, sqlite:PATH       SQLite (an existing file is recognised by its header)
    index.bin, x.npz                                   index.bin (the pickle-free npz of pipeline/gallery.py)
    milvus://[user:password@]host:port/collection      a Milvus server (milvus+https:// for TLS)
    milvus-lite:PATH[?collection=NAME]                 embedded Milvus in one local file (pip milvus-lite)

Milvus URIs take ``?index=FLAT|IVF_FLAT|HNSW|AUTOINDEX`` (default FLAT: exact, like the other backends).
"""
from __future__ import annotations

import os
import re
import urllib.parse
from typing import Optional

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.stores.base import GalleryInfo, GalleryStore
from arcface_paddle.stores.errors import ConflictError
from arcface_paddle.stores.index_file import IndexFileStore
from arcface_paddle.stores.index_format import ZIP_MAGIC, GalleryIndex, import_reference_index, load_index
from arcface_paddle.stores.milvus import MilvusStore
from arcface_paddle.stores.sqlite import SQLiteStore, is_sqlite_file

SQLITE_EXTENSIONS = (".db", ".sqlite", ".sqlite3")
INDEX_EXTENSIONS = (".bin", ".npz")
COLLECTION_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
DEFAULT_COLLECTION = "gallery"
BACKENDS = ("sqlite", "index.bin", "milvus")


def backend_of(uri: str) -> str:
    """``sqlite``, ``index.bin`` or ``milvus`` for a gallery path/URI; ToolkitError when it cannot be told."""
    uri = os.fspath(uri)
    scheme = uri.split(":", 1)[0].lower() if ":" in uri and not os.path.splitdrive(uri)[0] else ""
    if scheme in ("milvus", "milvus+https", "milvus-lite"):
        return "milvus"
    if scheme == "sqlite":
        return "sqlite"
    if os.path.isfile(uri) and os.path.getsize(uri) > 0:
        if is_sqlite_file(uri):
            return "sqlite"
        with open(uri, "rb") as handle:
            head = handle.read(len(ZIP_MAGIC))
        if head == ZIP_MAGIC or head[:1] == b"\x80":     # npz, or a reference pickle load_index explains
            return "index.bin"
    lowered = uri.lower()
    if lowered.endswith(SQLITE_EXTENSIONS):
        return "sqlite"
    if lowered.endswith(INDEX_EXTENSIONS):
        return "index.bin"
    raise ToolkitError(f"{uri}: cannot tell the gallery backend; name it gallery.db (SQLite), index.bin, "
                       "milvus://host:port/collection or milvus-lite:PATH")


def _milvus_arguments(uri: str) -> dict:
    parts = urllib.parse.urlsplit(uri)
    options = dict(urllib.parse.parse_qsl(parts.query))
    index_type = options.get("index", "FLAT").upper()
    if parts.scheme == "milvus-lite":
        path = urllib.parse.unquote(parts.netloc + parts.path)
        if not path:
            raise ToolkitError(f"{uri}: milvus-lite needs a file path (milvus-lite:data/gallery.milvus.db)")
        collection = options.get("collection", DEFAULT_COLLECTION)
        client_uri = os.path.abspath(path)
        os.makedirs(os.path.dirname(client_uri), exist_ok=True)
        token, display = "", f"{path}#{collection}"
    else:
        if not parts.hostname or not parts.port:
            raise ToolkitError(f"{uri}: expected milvus://host:port/collection")
        collection = parts.path.strip("/") or DEFAULT_COLLECTION
        protocol = "https" if parts.scheme == "milvus+https" else "http"
        client_uri = f"{protocol}://{parts.hostname}:{parts.port}"
        token = (f"{urllib.parse.unquote(parts.username or '')}:{urllib.parse.unquote(parts.password or '')}"
                 if parts.username else "")
        display = f"milvus://{parts.hostname}:{parts.port}/{collection}"    # never the password
    if not COLLECTION_PATTERN.match(collection):
        raise ToolkitError(f"{uri}: collection name {collection!r} must be letters, digits and _ "
                           "(not starting with a digit)")
    return {"uri": client_uri, "collection": collection, "token": token, "index_type": index_type,
            "display": display}


def _sqlite_path(uri: str) -> str:
    if uri.lower().startswith("sqlite:"):
        path = uri[len("sqlite:"):]
        return path[2:] if path.startswith("///") else path
    return uri


def open_store(uri: str, info: Optional[GalleryInfo] = None, create: bool = True,
               replace: bool = False) -> GalleryStore:
    """Open the gallery at ``uri``; ``info`` (the recognizer's model_id, crop mode, size) is checked against
    an existing gallery and used to create a missing one when ``create``.

    ``replace`` starts over: an ``index.bin`` is overwritten at the first change; a database or collection
    that already holds faces is refused (ConflictError) rather than wiped.
    """
    uri = os.fspath(uri)
    backend = backend_of(uri)
    if backend == "index.bin":
        return IndexFileStore(uri, info=info, create=create, replace=replace)
    if backend == "sqlite":
        store = SQLiteStore(_sqlite_path(uri), info=info, create=create or replace)
    else:
        store = MilvusStore(info=info, create=create or replace, **_milvus_arguments(uri))
    if replace and len(store):
        count = len(store)
        store.close()
        raise ConflictError(f"{uri}: gallery already holds {count} faces; add to it with --append, or remove "
                            "it first to rebuild")
    return store


def read_gallery(source: str, reference_model_id: Optional[str] = None,
                 reference_embedding_size: Optional[int] = None) -> GalleryIndex:
    """Every face of the gallery at ``source`` (any backend) as an in-memory index — or of a reference-toolkit
    pickled ``index.bin`` when ``reference_model_id`` states which recognizer produced it (its rows must then have
    ``reference_embedding_size`` values, that recognizer's)."""
    source = os.fspath(source)
    if backend_of(source) == "index.bin":
        if reference_model_id is not None and not _is_npz(source):
            return import_reference_index(source, model_id=reference_model_id,
                                          embedding_size=reference_embedding_size)
        return load_index(source)
    with open_store(source, create=False) as store:
        return store.export_index()


def _is_npz(path: str) -> bool:
    """Our ``index.bin`` is an ``.npz`` (a zip); anything else given as a reference index is read as the
    reference toolkit's pickle.  An unreadable file counts as ours, so :func:`load_index` names the problem."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(ZIP_MAGIC)) == ZIP_MAGIC
    except OSError:
        return True
