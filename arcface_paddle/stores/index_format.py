"""``index.bin``: the gallery of known faces, in our own pickle-free format.

The file is a NumPy ``.npz`` archive read with ``allow_pickle=False`` holding

    magic            "arcface_paddle.gallery"
    format_version   1
    names            N unicode strings (one identity name per row)
    features         N×D float32, every row L2-normalised
    embedding_size   D
    model_id         the recognizer's ``model_id`` from its model.yaml
    crop_mode        how faces were cut out before embedding: "aligned" (keypoint alignment), "box" (the
                     detection box, ``--no-align``) or "image" (whole image, no detector); optional in files
                     written before it existed, which were all "aligned"

so a gallery built with one recognizer is refused by another (their embeddings are not comparable), and
one built from other crops than the queries can be told apart (similarities would be lower).
:func:`validate_gallery` checks any names + features (from this file or another store) before they are
searched: shapes, the recognizer's embedding size, finite values, unit-length rows — a gallery that fails
any of these would answer with wrong names (a similarity of 740, every face "obama"), so it is refused.
A reference-toolkit ``index.bin`` (a pickled dict ``{"label": [...], "feature": array}``) is imported
through the restricted unpickler by :func:`import_reference_index`; nothing here calls ``pickle.load``.

Search is exact cosine similarity, computed over the gallery in chunks (constant extra memory); when
``faiss`` (optional extra ``faiss-cpu``) is installed, ``backend="faiss"`` uses its exact inner-product
index instead.
"""
from __future__ import annotations

import io
import os
import zipfile
from typing import Optional, Sequence

import numpy as np

from arcface_paddle.core.embeddings import l2_normalize
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.restricted_pickle import load_pickle_file
from arcface_paddle.core.safe_io import atomic_save_bytes, check_regular_file
from arcface_paddle.stores.search import SEARCH_CHUNK_ROWS, ExactSearch

MAGIC = "arcface_paddle.gallery"
FORMAT_VERSION = 1
ZIP_MAGIC = b"PK\x03\x04"          # every .npz starts with a zip local-file header
_FIELDS = ("magic", "format_version", "names", "features", "embedding_size", "model_id")
CROP_MODES = ("aligned", "box", "image")
DEFAULT_CROP_MODE = "aligned"
UNIT_NORM_TOLERANCE = 1e-3        # stored rows are unit length to float32 rounding (~1e-7); 1e-3 is far from it


def validate_gallery(names, features: np.ndarray, source: str, embedding_size: Optional[int] = None,
                     normalized: bool = True) -> None:
    """Refuse names + features that would answer wrongly: mismatched counts, not N×D float32, another
    embedding size than the recognizer's (``embedding_size``), NaN/Inf, or (``normalized``) rows that are
    not unit length.  ToolkitError naming ``source``; for every gallery store, not only ``index.bin``."""
    if not isinstance(features, np.ndarray) or features.ndim != 2 or len(names) != len(features):
        shape = getattr(features, "shape", None)
        raise ToolkitError(f"{source}: inconsistent gallery ({len(names)} names, features of shape {shape})")
    if features.dtype != np.float32:
        raise ToolkitError(f"{source}: gallery features are {features.dtype}, expected float32")
    if embedding_size is not None and features.shape[1] != int(embedding_size):
        raise ToolkitError(f"{source}: gallery holds {features.shape[1]}-d features but the recognizer gives "
                           f"{int(embedding_size)}-d embeddings; rebuild the index with this recognizer "
                           f"(--build_index)")
    if not len(features):
        return
    # Squared row lengths in one pass (0.04 s for 1M × 128): a NaN/Inf anywhere makes its row's non-finite.
    squares = np.einsum("ij,ij->i", features, features)
    if not np.isfinite(squares).all():
        bad = int(np.flatnonzero(~np.isfinite(squares))[0])
        raise ToolkitError(f"{source}: corrupt gallery (non-finite feature values, first in row {bad}, "
                           f"{names[bad]!r})")
    if normalized:
        norms = np.sqrt(squares)
        off = np.flatnonzero(np.abs(norms - 1.0) > UNIT_NORM_TOLERANCE)
        if off.size:
            row = int(off[0])
            raise ToolkitError(f"{source}: corrupt gallery ({off.size} feature rows are not unit length, e.g. row "
                               f"{row} ({names[row]!r}) has length {norms[row]:.4g}); rebuild it with --build_index")


class GalleryIndex:
    """Names + normalised features of known faces, tied to one recognizer ``model_id``."""

    def __init__(self, names: Sequence[str], features: np.ndarray, model_id: str, source: str = "<memory>",
                 normalize: bool = True, crop_mode: str = DEFAULT_CROP_MODE):
        if crop_mode not in CROP_MODES:
            raise ToolkitError(f"{source}: unknown crop_mode {crop_mode!r} (expected one of {', '.join(CROP_MODES)})")
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or len(names) != len(features):
            raise ToolkitError(f"{source}: {len(names)} names but features of shape {features.shape}")
        # A loaded index keeps its names as the numpy array it read (a million Python strings cost load time);
        # ``names`` turns them into a list on first use.
        self._names = names if isinstance(names, np.ndarray) else [str(name) for name in names]
        self.features = l2_normalize(features) if normalize and len(features) else features
        self.model_id = str(model_id)
        self.crop_mode = crop_mode
        self.source = source
        self._search = ExactSearch()

    @classmethod
    def empty(cls, embedding_size: int, model_id: str, crop_mode: str = DEFAULT_CROP_MODE) -> "GalleryIndex":
        return cls([], np.zeros((0, embedding_size), np.float32), model_id, crop_mode=crop_mode)

    def __len__(self) -> int:
        return len(self._names)

    @property
    def names(self) -> list[str]:
        if isinstance(self._names, np.ndarray):
            self._names = self._names.tolist()
        return self._names

    def name_of(self, row: int) -> str:
        return str(self._names[row])

    @property
    def embedding_size(self) -> int:
        return int(self.features.shape[1])

    @property
    def identities(self) -> list[str]:
        return sorted(set(self.names))

    def add(self, names: Sequence[str], features: np.ndarray) -> None:
        features = l2_normalize(np.asarray(features, dtype=np.float32).reshape(len(names), -1))
        validate_gallery(list(names), features, self.source)
        if len(self) and features.shape[1] != self.embedding_size:
            raise ToolkitError(f"{self.source}: cannot add {features.shape[1]}-d features to a "
                               f"{self.embedding_size}-d gallery")
        self.names.extend(str(name) for name in names)
        self.features = np.concatenate([self.features.reshape(-1, features.shape[1]), features], axis=0)
        self._search.invalidate()

    def check_model(self, model_id: str, model_dir: str = "", embedding_size: Optional[int] = None) -> None:
        """Refuse a gallery whose embeddings came from another recognizer (by model_id and embedding size)."""
        if self.model_id != str(model_id):
            where = f" ({model_dir})" if model_dir else ""
            raise ToolkitError(
                f"{self.source}: gallery built with recognizer model_id {self.model_id}, but the recognizer in "
                f"use{where} is model_id {model_id}; rebuild the index with this recognizer (--build_index)")
        if embedding_size is not None and len(self) and self.embedding_size != int(embedding_size):
            validate_gallery(self._names, self.features, self.source, embedding_size, normalized=False)

    # ---- search -------------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, top_k: int = 5, backend: str = "numpy",
               chunk_rows: int = SEARCH_CHUNK_ROWS) -> tuple[np.ndarray, np.ndarray]:
        """Exact cosine top-k: (similarities Q×k descending, row indices Q×k); k is capped at len(self)."""
        if len(self) == 0:
            raise ToolkitError(f"{self.source}: the gallery is empty; build it with --build_index")
        queries = np.asarray(queries, dtype=np.float32)
        queries = queries.reshape(1, -1) if queries.ndim == 1 else queries
        if queries.ndim != 2 or queries.shape[1] != self.embedding_size:
            raise ToolkitError(f"{self.source}: queries of shape {queries.shape} against a gallery of "
                               f"{self.embedding_size}-d features (embeddings from another recognizer?)")
        return self._search.top_k(self.features, l2_normalize(queries), top_k, backend, chunk_rows)

    # ---- file I/O -----------------------------------------------------------------------------------------
    def save(self, path: str) -> None:
        """Write the gallery atomically (temp file + rename), so an old index is never half-overwritten."""
        atomic_save_bytes(path, self.to_bytes())
        self.source = path

    def to_bytes(self) -> bytes:
        """The ``index.bin`` file contents."""
        buffer = io.BytesIO()
        names = np.asarray(self._names, dtype=np.str_) if len(self) else np.zeros((0,), dtype="<U1")
        np.savez(buffer, magic=np.array(MAGIC), format_version=np.array(FORMAT_VERSION, np.int64),
                 names=names, features=np.ascontiguousarray(self.features, dtype=np.float32),
                 embedding_size=np.array(self.features.shape[1], np.int64), model_id=np.array(self.model_id),
                 crop_mode=np.array(self.crop_mode))
        return buffer.getvalue()


def load_index(path: str, expected_model_id: Optional[str] = None, model_dir: str = "",
               embedding_size: Optional[int] = None) -> GalleryIndex:
    """Read an ``index.bin``; ToolkitError for a missing, corrupt, truncated, foreign or mismatched file
    (``expected_model_id`` and ``embedding_size``: the recognizer's)."""
    if not os.path.exists(path):
        raise ToolkitError(f"{path}: index file not found")
    check_regular_file(path, "index file")
    with open(path, "rb") as handle:
        head = handle.read(len(ZIP_MAGIC))
    if head[:1] == b"\x80":
        raise ToolkitError(f"{path}: this is a reference-toolkit (pickled) index; convert it once with "
                           f"test_recognition.py --import_index {path} --build_index NEW_INDEX")
    if head != ZIP_MAGIC:
        what = "empty file" if not head else "not a NumPy .npz archive"
        raise ToolkitError(f"{path}: corrupt or truncated index ({what})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [field for field in _FIELDS if field not in archive.files]
            if missing:
                raise ToolkitError(f"{path}: not an arcface_paddle gallery (missing {', '.join(missing)})")
            fields = {field: archive[field] for field in _FIELDS}
            crop_mode = str(archive["crop_mode"]) if "crop_mode" in archive.files else DEFAULT_CROP_MODE
    except ToolkitError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as error:
        raise ToolkitError(f"{path}: corrupt or truncated index ({type(error).__name__}: {error})") from None
    if str(fields["magic"]) != MAGIC:
        raise ToolkitError(f"{path}: not an arcface_paddle gallery (magic {str(fields['magic'])!r})")
    version = int(fields["format_version"])
    if version != FORMAT_VERSION:
        raise ToolkitError(f"{path}: gallery format version {version}, this toolkit reads {FORMAT_VERSION}")
    features, names = fields["features"], fields["names"]
    size = int(fields["embedding_size"])
    if names.dtype.kind != "U" or names.ndim != 1:
        raise ToolkitError(f"{path}: corrupt gallery (names must be a 1-d array of strings, found {names.dtype})")
    validate_gallery(names, features, path)
    if features.shape[1] != size:
        raise ToolkitError(f"{path}: inconsistent gallery (features are {features.shape[1]}-d, embedding_size "
                           f"says {size})")
    # Rows were normalised when saved (validate_gallery checked it); re-normalising would only cost load time.
    index = GalleryIndex(names, features, str(fields["model_id"]), source=path, normalize=False,
                         crop_mode=crop_mode)
    if expected_model_id is not None:
        index.check_model(expected_model_id, model_dir, embedding_size)
    elif embedding_size is not None:
        validate_gallery(names, features, path, embedding_size, normalized=False)
    return index


def import_reference_index(path: str, model_id: str, embedding_size: Optional[int] = None) -> GalleryIndex:
    """Read a reference-toolkit ``index.bin`` (pickled ``{"label": [...], "feature": array}``) safely.

    The pickle is decoded with the restricted unpickler (plain data + numpy arrays only); ``model_id`` is the
    recognizer the caller states the features came from — the reference format does not record it.
    """
    raw = load_pickle_file(path, "index file", allow_numpy=True)
    if not isinstance(raw, dict):
        raise ToolkitError(f"{path}: expected a dict with 'label' and 'feature', found {type(raw).__name__}")
    raw = {key.decode() if isinstance(key, bytes) else key: value for key, value in raw.items()}
    if "label" not in raw or "feature" not in raw:
        raise ToolkitError(f"{path}: expected keys 'label' and 'feature', found {sorted(map(str, raw))}")
    labels = [label.decode("utf-8") if isinstance(label, bytes) else str(label) for label in raw["label"]]
    try:
        features = np.asarray(raw["feature"], dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ToolkitError(f"{path}: 'feature' is not a numeric array ({error})") from None
    if features.ndim != 2 or len(features) != len(labels):
        raise ToolkitError(f"{path}: {len(labels)} labels but features of shape {features.shape}")
    # the reference stored raw embeddings: normalised here, but NaN and the embedding size are checked first
    validate_gallery(labels, features, path, embedding_size, normalized=False)
    return GalleryIndex(labels, features, model_id, source=path)
