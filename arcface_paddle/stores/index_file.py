"""``index.bin`` behind the gallery interface: for galleries you ship and copy, not for ones that change often.

The file format is :mod:`arcface_paddle.stores.index_format`'s (names + features, no face ids).  Each change
takes an exclusive lock on ``<file>.lock``, re-reads the file if another process changed it, applies the
change and rewrites the whole file atomically (temp file + rename) — so two concurrent ``--append`` runs
both land, and a crash never leaves half a file.  Face ids (and so deleting one face, or idempotent adds
with a client-chosen id) need SQLite or Milvus.
"""
from __future__ import annotations

import contextlib
import os
from typing import Optional

import numpy as np

from arcface_paddle.core.safe_io import exclusive_lock
from arcface_paddle.stores.base import FaceRecord, GalleryInfo, GalleryStore, SubjectSummary
from arcface_paddle.stores.checks import check_stored_rows, check_subject_name
from arcface_paddle.stores.errors import ConflictError, NotFoundError, UnsupportedOperationError
from arcface_paddle.stores.index_format import GalleryIndex, load_index


def _file_identity(path: str):
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class IndexFileStore(GalleryStore):
    backend = "index.bin"
    supports_face_ids = False

    def __init__(self, path: Optional[str], info: Optional[GalleryInfo] = None, create: bool = True,
                 replace: bool = False, index: Optional[GalleryIndex] = None):
        """``path`` None: a gallery in memory only (``index`` or empty). ``replace``: start empty and overwrite
        the file at the first change (``--build_index`` without ``--append``)."""
        self.path = None if path is None else os.fspath(path)
        self._identity = None             # the file as last read or written by us (None: no file then)
        self._replacing = replace         # the first save overwrites whatever the file holds
        if index is not None:
            loaded = index
        elif self.path is not None and not replace and os.path.exists(self.path):
            loaded = self._load()
        elif self.path is not None and not create and not replace:
            raise NotFoundError(f"{self.path}: index file not found")
        elif info is None:
            raise UnsupportedOperationError(f"{self.path}: a new gallery needs the recognizer's model_id, crop "
                                            "mode and size")
        else:
            loaded = GalleryIndex.empty(info.embedding_size, info.model_id, info.crop_mode)
        size = loaded.embedding_size if len(loaded) or info is None else info.embedding_size
        super().__init__(GalleryInfo(loaded.model_id, loaded.crop_mode, size), self.path or loaded.source)
        if info is not None:
            self.check_compatible(info.model_id, info.embedding_size)
        self._index = loaded

    @classmethod
    def from_index(cls, index: GalleryIndex) -> "IndexFileStore":
        return cls(None, index=index)

    @property
    def index(self) -> GalleryIndex:
        return self._index

    def _load(self) -> GalleryIndex:
        identity = _file_identity(self.path)
        index = load_index(self.path)
        check_stored_rows(index.features, self.path)
        self._identity = identity
        return index

    @contextlib.contextmanager
    def _changing(self):
        """Exclusive lock on the file, its latest contents loaded; the caller's change is saved on exit."""
        with self._lock:
            if self.path is None:
                yield
                return
            with exclusive_lock(self.path, "gallery file"):
                current = _file_identity(self.path)
                if not self._replacing and current is not None and current != self._identity:
                    self._index = self._load()       # another process wrote (or created) it meanwhile
                yield
                self._index.save(self.path)
                self._identity = _file_identity(self.path)
                self._replacing = False

    def _replace_rows(self, names: list, features: np.ndarray) -> None:
        self._index = GalleryIndex(names, features.reshape(-1, self.embedding_size), self.model_id,
                                   source=self.source, normalize=False, crop_mode=self.crop_mode)

    # ---- changes ------------------------------------------------------------------------------------------
    def _add(self, prepared):
        with self._changing():
            self._index.add([subject for _, subject, _, _, _ in prepared],
                            np.stack([row for _, _, row, _, _ in prepared]))
        return [FaceRecord(None, subject, source, created) for _, subject, _, source, created in prepared]

    def delete_face(self, face_id: str) -> FaceRecord:
        raise UnsupportedOperationError(f"{self.source}: an index.bin has no face ids; delete the subject, or use "
                                        "a SQLite or Milvus gallery")

    def delete_subject(self, name: str) -> int:
        name = check_subject_name(name)
        with self._changing():
            keep = np.asarray([existing != name for existing in self._index.names], dtype=bool)
            removed = int((~keep).sum())
            if not removed:
                raise NotFoundError(f"subject {name!r} not found")
            self._replace_rows([n for n, k in zip(self._index.names, keep) if k], self._index.features[keep])
        return removed

    def rename_subject(self, old: str, new: str) -> int:
        old, new = check_subject_name(old), check_subject_name(new)
        with self._changing():
            names = self._index.names
            count = names.count(old)
            if not count:
                raise NotFoundError(f"subject {old!r} not found")
            if old != new and new in names:
                raise ConflictError(f"subject {new!r} already exists; delete or rename it first")
            self._replace_rows([new if name == old else name for name in names], self._index.features)
        return count

    # ---- reading ------------------------------------------------------------------------------------------
    def _fresh(self) -> GalleryIndex:
        """The index, re-read if another process rewrote the file since."""
        with self._lock:
            if self.path is not None and not self._replacing:
                current = _file_identity(self.path)
                if current is not None and current != self._identity:
                    self._index = self._load()
            return self._index

    def subjects(self) -> list[SubjectSummary]:
        names = self._fresh().names
        counts: dict[str, int] = {}
        for name in names:
            counts[name] = counts.get(name, 0) + 1
        return [SubjectSummary(name, counts[name]) for name in sorted(counts)]

    def subject_faces(self, name: str) -> list[FaceRecord]:
        name = check_subject_name(name)
        count = self._fresh().names.count(name)
        if not count:
            raise NotFoundError(f"subject {name!r} not found")
        return [FaceRecord(None, name) for _ in range(count)]

    def __len__(self) -> int:
        return len(self._fresh())

    def search(self, queries, top_k, backend="numpy"):
        index = self._fresh()
        if not len(index):
            return [(np.zeros(0, np.float32), []) for _ in range(len(queries))]
        similarities, rows = index.search(queries, top_k=top_k, backend=backend)
        return [(sims, [index.name_of(row) for row in row_ids]) for sims, row_ids in zip(similarities, rows)]

    def export_index(self) -> GalleryIndex:
        index = self._fresh()
        return GalleryIndex(list(index.names), index.features.copy(), self.model_id, source=self.source,
                            normalize=False, crop_mode=self.crop_mode)

    def save(self, path: str) -> None:
        """Write the gallery to ``path`` (an in-memory gallery gets a file)."""
        self._fresh().save(path)
