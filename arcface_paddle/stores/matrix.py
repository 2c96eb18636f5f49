"""The in-memory side of a SQLite gallery: unit embedding rows, each with a face id and a subject key.

Adding appends (amortised growth), removing moves the last row into the hole — both O(D), so a gallery of a
million faces changes without a reload.  Search is :class:`arcface_paddle.stores.search.ExactSearch`, the exact top-k ``index.bin`` uses too.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from arcface_paddle.stores.search import SEARCH_CHUNK_ROWS, ExactSearch


class EmbeddingMatrix:
    """Rows of unit embeddings; ``face_ids[row]`` and ``keys[row]`` (a subject's integer key) beside them."""

    def __init__(self, embedding_size: int):
        self.embedding_size = int(embedding_size)
        self._rows = np.zeros((0, self.embedding_size), np.float32)
        self._keys = np.zeros((0,), np.int64)
        self.count = 0
        self.face_ids: list[str] = []
        self.row_of: dict[str, int] = {}
        self._search = ExactSearch()

    def __len__(self) -> int:
        return self.count

    def __contains__(self, face_id: str) -> bool:
        return face_id in self.row_of

    @property
    def rows(self) -> np.ndarray:
        return self._rows[:self.count]

    @property
    def keys(self) -> np.ndarray:
        return self._keys[:self.count]

    def _reserve(self, extra: int) -> None:
        needed = self.count + extra
        if needed <= len(self._rows):
            return
        capacity = max(needed, int(len(self._rows) * 1.5) + 1024)
        rows = np.zeros((capacity, self.embedding_size), np.float32)
        keys = np.zeros((capacity,), np.int64)
        rows[:self.count], keys[:self.count] = self.rows, self.keys
        self._rows, self._keys = rows, keys

    def add(self, face_ids: Sequence[str], keys: Sequence[int], rows: np.ndarray) -> None:
        """Append rows (face ids must be new to the matrix)."""
        if not len(face_ids):
            return
        self._reserve(len(face_ids))
        start = self.count
        self._rows[start:start + len(face_ids)] = rows
        self._keys[start:start + len(face_ids)] = keys
        for offset, face_id in enumerate(face_ids):
            self.row_of[face_id] = start + offset
        self.face_ids.extend(face_ids)
        self.count += len(face_ids)
        self._search.invalidate()

    def remove(self, face_id: str) -> bool:
        """Drop one face (the last row moves into its place); False when it is not here."""
        row = self.row_of.pop(face_id, None)
        if row is None:
            return False
        last = self.count - 1
        if row != last:
            moved = self.face_ids[last]
            self._rows[row], self._keys[row] = self._rows[last], self._keys[last]
            self.face_ids[row] = moved
            self.row_of[moved] = row
        self.face_ids.pop()
        self.count = last
        self._search.invalidate()
        return True

    def top_k(self, queries: np.ndarray, top_k: int, backend: str = "numpy",
              chunk_rows: int = SEARCH_CHUNK_ROWS) -> tuple[np.ndarray, np.ndarray]:
        """Exact cosine top-k of unit ``queries``: (similarities Q×k descending, rows Q×k); k capped at the size."""
        return self._search.top_k(self.rows, queries, top_k, backend, chunk_rows)
