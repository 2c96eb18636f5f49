"""Exact cosine top-k over unit embedding rows, shared by ``index.bin`` and every store's in-memory side.

Chunked numpy products bound the temporary memory; ``backend="faiss"`` (optional extra ``faiss-cpu``) uses faiss's
exact inner-product index instead, built on first use and dropped when the rows change.
"""
from __future__ import annotations

import contextlib

import numpy as np

from arcface_paddle.core.errors import ToolkitError

SEARCH_CHUNK_ROWS = 65536
SEARCH_BACKENDS = ("numpy", "faiss")


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401  (optional dependency: pip install faiss-cpu)
    except ImportError:
        return False
    return True


class ExactSearch:
    """Top-k over a rows matrix the owner passes in; call :meth:`invalidate` whenever the rows change."""

    def __init__(self):
        self._faiss_index = None

    def invalidate(self) -> None:
        self._faiss_index = None

    def top_k(self, rows: np.ndarray, queries: np.ndarray, top_k: int, backend: str = "numpy",
              chunk_rows: int = SEARCH_CHUNK_ROWS) -> tuple[np.ndarray, np.ndarray]:
        """(similarities Q×k descending, row indices Q×k) of unit ``queries``; k is capped at the row count."""
        top_k = max(1, min(int(top_k), len(rows)))
        if backend == "faiss":
            return self._faiss_top_k(rows, queries, top_k)
        if backend != "numpy":
            raise ToolkitError(f"unknown search backend {backend!r}; choose {' or '.join(SEARCH_BACKENDS)}")
        with blas_threads_for(len(queries)):
            return chunked_top_k(rows, queries, top_k, chunk_rows)

    def _faiss_top_k(self, rows: np.ndarray, queries: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        try:
            import faiss  # optional dependency (pip install faiss-cpu)
        except ImportError:
            raise ToolkitError("search backend faiss needs the optional extra: pip install faiss-cpu") from None
        if self._faiss_index is None:
            index = faiss.IndexFlatIP(rows.shape[1])
            index.add(np.ascontiguousarray(rows, np.float32))
            self._faiss_index = index
        similarities, found = self._faiss_index.search(np.ascontiguousarray(queries, np.float32), top_k)
        return similarities, found.astype(np.int64)


_BLAS_CONTROLLER = None
FEW_QUERIES = 16


def blas_threads_for(num_queries: int):
    """One BLAS thread for a few queries: the scan is then a memory-bound matrix-vector product that extra
    threads do not speed up, while OpenBLAS's spinning threads slow it 2-3× on a busy machine (measured:
    1M × 128 top-5 at load 8 on 2 cores, 110-140 ms with 1 thread vs 290-320 ms with 2)."""
    global _BLAS_CONTROLLER
    if num_queries > FEW_QUERIES:
        return contextlib.nullcontext()
    if _BLAS_CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController  # installed with scikit-learn
        except ImportError:
            return contextlib.nullcontext()
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def chunked_top_k(gallery: np.ndarray, queries: np.ndarray, top_k: int,
                  chunk_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k inner products, one gallery chunk at a time (bounded temporary memory)."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(gallery), chunk_rows):
        scores = queries @ gallery[start:start + chunk_rows].T
        k = min(top_k, scores.shape[1])
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, part, axis=1)], axis=1)
        best_rows = np.concatenate([best_rows, part + start], axis=1)
        if best_scores.shape[1] > top_k:
            keep = np.argpartition(-best_scores, top_k - 1, axis=1)[:, :top_k]
            best_scores = np.take_along_axis(best_scores, keep, axis=1)
            best_rows = np.take_along_axis(best_rows, keep, axis=1)
    order = np.argsort(-best_scores, axis=1, kind="stable")
    return np.take_along_axis(best_scores, order, axis=1), np.take_along_axis(best_rows, order, axis=1)
