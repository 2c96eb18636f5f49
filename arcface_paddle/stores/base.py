"""The gallery abstraction every backend implements, and the checks they all share.

A gallery holds faces: each one an L2-normalised embedding of one recognizer (``model_id``), cut out one
way (``crop_mode``), under a subject name, with a face id, a source name and a creation time.  Backends:
``index.bin`` (:mod:`.index_file`), SQLite (:mod:`.sqlite`) and Milvus (:mod:`.milvus`); :func:`open_store`
in :mod:`.uri` picks one from the path or URI the user gives.

Every backend refuses embeddings of another recognizer, size or crop mode (:meth:`GalleryStore.check_compatible`),
and every embedding that enters a gallery goes through :func:`checked_embeddings` (finite, right width,
not all zero, normalised).
"""
from __future__ import annotations

import abc
import dataclasses
import hashlib
import re
import threading
import time
import unicodedata
import uuid
from typing import Iterable, Optional, Sequence

import numpy as np

from arcface_paddle.core.embeddings import l2_normalize
from arcface_paddle.pipeline.gallery import CROP_MODES, GalleryIndex
from arcface_paddle.pipeline.gallery_vote import UNKNOWN, Match, vote
from arcface_paddle.stores.errors import (
    ConflictError,
    IncompatibleGalleryError,
    InvalidValueError,
    UnsupportedOperationError,
)

MAX_NAME_CHARS = 200
FACE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
NORM_TOLERANCE = 1e-3        # stored rows are unit length; more drift than this means a damaged gallery


@dataclasses.dataclass(frozen=True)
class GalleryInfo:
    """What makes embeddings comparable: the recognizer, its output width and how faces were cut out."""
    model_id: str
    crop_mode: str
    embedding_size: int


@dataclasses.dataclass
class NewFace:
    subject: str
    embedding: np.ndarray
    face_id: Optional[str] = None        # None: the store makes one
    source: str = ""                     # where it came from (an upload's file name), never a server path


@dataclasses.dataclass
class FaceRecord:
    face_id: Optional[str]               # None in an index.bin (it has no face ids)
    subject: str
    source: str = ""
    created: float = 0.0                 # seconds since the epoch
    added: bool = True                   # False when an idempotent add found the face already there

    def to_dict(self) -> dict:
        return {"face_id": self.face_id, "subject": self.subject, "source": self.source,
                "created": round(self.created, 3)}


@dataclasses.dataclass
class SubjectSummary:
    name: str
    faces: int


# ---- shared checks --------------------------------------------------------------------------------------------
def check_subject_name(name) -> str:
    """A subject name as stored: stripped, 1-200 characters, no control characters, not ``unknown``."""
    if not isinstance(name, str):
        raise InvalidValueError(f"subject name must be text, got {type(name).__name__}")
    name = name.strip()
    if not name:
        raise InvalidValueError("subject name is empty")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidValueError(f"subject name is {len(name)} characters long (at most {MAX_NAME_CHARS})")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in name):
        raise InvalidValueError(f"subject name {name!r} holds control characters")
    if name.lower() == UNKNOWN:
        raise InvalidValueError(f"{UNKNOWN!r} is what an unrecognised face is called; choose another subject name")
    return name


def check_face_id(face_id) -> str:
    if not isinstance(face_id, str) or not FACE_ID_PATTERN.match(face_id):
        raise InvalidValueError(f"face id {str(face_id)[:140]!r} must be 1-128 characters of letters, digits and "
                                "._:@- (starting with a letter or digit)")
    return face_id


def new_face_id() -> str:
    return uuid.uuid4().hex


def content_face_id(subject: str, embedding: np.ndarray) -> str:
    """A face id derived from the face itself, so importing the same gallery twice adds nothing twice."""
    digest = hashlib.sha1(subject.encode("utf-8") + b"\0" + np.ascontiguousarray(embedding, "<f4").tobytes())
    return "imp-" + digest.hexdigest()[:24]


def checked_embeddings(rows, embedding_size: int, where: str = "embedding") -> np.ndarray:
    """N×D float32 unit rows; InvalidValueError for the wrong width, NaN/Inf or an all-zero row."""
    try:
        rows = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError):
        raise InvalidValueError(f"{where}: not a numeric array") from None
    if rows.ndim == 1:
        rows = rows[None]
    if rows.ndim != 2 or rows.shape[1] != embedding_size:
        raise IncompatibleGalleryError(f"{where}: embeddings of shape {rows.shape}, but the gallery holds "
                                       f"{embedding_size}-d embeddings")
    if not np.isfinite(rows).all():
        raise InvalidValueError(f"{where}: embedding holds NaN or infinite values")
    norms = np.linalg.norm(rows, axis=1)
    if (norms <= 1e-6).any():
        raise InvalidValueError(f"{where}: an all-zero embedding cannot be compared")
    return l2_normalize(rows)


def check_stored_rows(rows: np.ndarray, where: str) -> None:
    """Rows read back from a store must still be finite and unit length (else it was damaged or hand-edited)."""
    if not len(rows):
        return
    if not np.isfinite(rows.sum()):
        raise InvalidValueError(f"{where}: corrupt gallery (non-finite embedding values)")
    norms = np.einsum("ij,ij->i", rows, rows)
    bad = np.flatnonzero(np.abs(norms - 1.0) > 2 * NORM_TOLERANCE)
    if len(bad):
        raise InvalidValueError(f"{where}: corrupt gallery ({len(bad)} embeddings are not unit length, "
                                f"e.g. row {int(bad[0])} has squared norm {float(norms[bad[0]]):.4f})")


def check_crop_mode(crop_mode: str, where: str) -> str:
    if crop_mode not in CROP_MODES:
        raise InvalidValueError(f"{where}: unknown crop_mode {crop_mode!r} (expected one of {', '.join(CROP_MODES)})")
    return crop_mode


class GalleryStore(abc.ABC):
    """A gallery of faces that can change: add, delete, rename, list, search, export and import.

    Implementations are thread-safe (one lock around each operation); SQLite and index.bin are also safe
    with other processes writing the same file.
    """

    backend = "abstract"
    supports_face_ids = True

    def __init__(self, info: GalleryInfo, source: str):
        self.info = info
        self.source = source             # path or URI, for messages to whoever opened the store
        self._lock = threading.RLock()

    # ---- what the gallery is ------------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        return self.info.model_id

    @property
    def crop_mode(self) -> str:
        return self.info.crop_mode

    @property
    def embedding_size(self) -> int:
        return self.info.embedding_size

    @property
    def identities(self) -> list[str]:
        return sorted(summary.name for summary in self.subjects())

    def check_compatible(self, model_id: str, embedding_size: Optional[int] = None,
                         crop_mode: Optional[str] = None, model_dir: str = "") -> None:
        """Refuse a recognizer (or embeddings) this gallery's embeddings cannot be compared with."""
        if self.model_id != str(model_id):
            where = f" ({model_dir})" if model_dir else ""
            raise IncompatibleGalleryError(
                f"{self.source}: gallery built with recognizer model_id {self.model_id}, but the recognizer in "
                f"use{where} is model_id {model_id}; rebuild the gallery with this recognizer")
        if embedding_size and int(embedding_size) != self.embedding_size:
            raise IncompatibleGalleryError(f"{self.source}: gallery holds {self.embedding_size}-d embeddings, the "
                                           f"recognizer gives {embedding_size}-d ones")
        if crop_mode is not None and crop_mode != self.crop_mode:
            raise IncompatibleGalleryError(f"{self.source}: gallery holds {self.crop_mode!r} face crops, but these "
                                           f"are {crop_mode!r}; one gallery must use one kind")

    # ---- changes ------------------------------------------------------------------------------------------
    def add(self, faces: Sequence[NewFace]) -> list[FaceRecord]:
        """Add faces in one change. A face id already present under the same subject is not added again
        (``added=False``: retrying a request is harmless); under another subject it is a ConflictError."""
        prepared = self._prepare(faces)
        if not prepared:
            return []
        with self._lock:
            return self._add(prepared)

    def add_faces(self, subject: str, embeddings, face_ids: Optional[Sequence[Optional[str]]] = None,
                  sources: Optional[Sequence[str]] = None) -> list[FaceRecord]:
        embeddings = checked_embeddings(embeddings, self.embedding_size)
        count = len(embeddings)
        face_ids = list(face_ids) if face_ids is not None else [None] * count
        sources = list(sources) if sources is not None else [""] * count
        if len(face_ids) != count or len(sources) != count:
            raise InvalidValueError(f"{count} embeddings but {len(face_ids)} face ids and {len(sources)} sources")
        return self.add([NewFace(subject, row, face_id, source)
                         for row, face_id, source in zip(embeddings, face_ids, sources)])

    def _prepare(self, faces: Iterable[NewFace]) -> list[tuple[str, str, np.ndarray, str, float]]:
        faces = list(faces)
        if not faces:
            return []
        rows = checked_embeddings(np.stack([np.asarray(face.embedding, np.float32).reshape(-1) for face in faces]),
                                  self.embedding_size)
        now = time.time()
        prepared, seen = [], {}
        for face, row in zip(faces, rows):
            subject = check_subject_name(face.subject)
            if face.face_id is None:
                face_id = new_face_id()
            else:
                if not self.supports_face_ids:
                    raise UnsupportedOperationError(f"{self.source}: an index.bin has no face ids; use a SQLite "
                                                    "or Milvus gallery for client-chosen face ids")
                face_id = check_face_id(face.face_id)
            if face_id in seen:
                if seen[face_id] != subject:
                    raise ConflictError(f"face id {face_id!r} given twice, for {seen[face_id]!r} and {subject!r}")
                continue
            seen[face_id] = subject
            prepared.append((face_id, subject, row, str(face.source or "")[:MAX_NAME_CHARS], now))
        return prepared

    @abc.abstractmethod
    def _add(self, prepared: list[tuple[str, str, np.ndarray, str, float]]) -> list[FaceRecord]:
        """Store (face_id, subject, unit row, source, created) tuples in one change; under self._lock."""

    @abc.abstractmethod
    def delete_face(self, face_id: str) -> FaceRecord:
        """Remove one face (NotFoundError if absent); a subject left without faces disappears."""

    @abc.abstractmethod
    def delete_subject(self, name: str) -> int:
        """Remove a subject and all its faces; the number of faces removed (NotFoundError if absent)."""

    @abc.abstractmethod
    def rename_subject(self, old: str, new: str) -> int:
        """Give a subject's faces another name (ConflictError if ``new`` is in use); faces renamed."""

    # ---- reading ------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def subjects(self) -> list[SubjectSummary]:
        """Every subject with its face count, sorted by name."""

    @abc.abstractmethod
    def subject_faces(self, name: str) -> list[FaceRecord]:
        """The faces of one subject, oldest first (NotFoundError if absent)."""

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of faces."""

    @abc.abstractmethod
    def search(self, queries: np.ndarray, top_k: int, backend: str = "numpy") -> list[tuple[np.ndarray, list]]:
        """For each query: (similarities descending, subject names) of its ``top_k`` nearest faces
        (fewer when the gallery is smaller; none when it is empty)."""

    def match(self, embeddings, threshold: float, top_k: int, backend: str = "numpy") -> list[Match]:
        """Each embedding's name by the top-k vote of :func:`arcface_paddle.pipeline.gallery_vote.vote`."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if not len(embeddings):
            return []
        queries = checked_embeddings(embeddings, self.embedding_size, "query")
        return [vote(similarities, names, threshold) for similarities, names in self.search(queries, top_k, backend)]

    @abc.abstractmethod
    def export_index(self) -> GalleryIndex:
        """Every face as an in-memory ``index.bin`` gallery (names + features, same model_id and crop_mode)."""

    def import_index(self, index: GalleryIndex) -> int:
        """Add every row of an ``index.bin`` gallery in one change; rows already imported are skipped (their
        face ids come from their content). Refuses another recognizer, size or crop mode. Faces added."""
        self.check_compatible(index.model_id, index.embedding_size if len(index) else None, index.crop_mode)
        if not len(index):
            return 0
        features = checked_embeddings(index.features, self.embedding_size, index.source)
        faces = [NewFace(name, row, content_face_id(name, row) if self.supports_face_ids else None, "import")
                 for name, row in zip(index.names, features)]
        return sum(record.added for record in self.add(faces))

    def close(self) -> None:
        """Release files and connections."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
