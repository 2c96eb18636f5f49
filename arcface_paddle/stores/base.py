"""The gallery abstraction every backend implements, and the checks they all share.

A gallery holds faces: each one an L2-normalised embedding of one recognizer (``model_id``), cut out one
way (``crop_mode``), under a subject name, with a face id, a source name and a creation time.  Backends:
``index.bin`` (:mod:`.index_file`), SQLite (:mod:`.sqlite`) and Milvus (:mod:`.milvus`); :func:`open_store`
in :mod:`.uri` picks one from the path or URI the user gives.

Every backend refuses embeddings of another recognizer, size or crop mode (:meth:`GalleryStore.check_compatible`),
and every embedding that enters or leaves a gallery is checked (:mod:`.checks`).
"""
from __future__ import annotations

import abc
import dataclasses
import threading
import time
from typing import Iterable, Optional, Sequence

import numpy as np

from arcface_paddle.stores.checks import (
    MAX_NAME_CHARS,
    check_face_id,
    check_subject_name,
    checked_embeddings,
    content_face_id,
    new_face_id,
)
from arcface_paddle.stores.errors import (
    ConflictError,
    IncompatibleGalleryError,
    InvalidValueError,
    UnsupportedOperationError,
)
from arcface_paddle.stores.index_format import GalleryIndex
from arcface_paddle.stores.vote import Match, vote


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
        """Each embedding's name by the top-k vote of :func:`arcface_paddle.stores.vote.vote`."""
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
