"""Embedding rows: the one L2 normalisation every consumer (predictor, gallery, metrics) uses."""
from __future__ import annotations

import numpy as np


def l2_normalize(rows, dtype=np.float32, eps: float = 1e-12) -> np.ndarray:
    """Each row (last axis) scaled to unit length in ``dtype``; zero rows stay zero."""
    rows = np.asarray(rows, dtype=dtype)
    return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), eps)
