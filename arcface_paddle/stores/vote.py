"""Turning gallery search results into a name: top-k vote with a cosine-similarity threshold.

``DEFAULT_REC_THRESHOLD`` was chosen from measurements with the shipped SFace recognizer on the real
photos in ``tests/data/faces`` (see docs/recognition.md, "Choosing the threshold"): it lies between
the lowest same-person and the highest different-person cosine similarity measured there.  A model that
carries its own measured thresholds in ``model.yaml`` uses those instead (:func:`recognition_threshold`).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.model_yaml import ModelConfig, load_model_config, model_threshold
from arcface_paddle.core.shipped_models import DEFAULT_RECOGNIZER

UNKNOWN = "unknown"
DEFAULT_REC_THRESHOLD = 0.40
DEFAULT_CANDIDATES = 5


@dataclasses.dataclass
class Match:
    name: str              # identity, or UNKNOWN
    similarity: float      # best cosine similarity of the winning name (or of the best candidate if unknown)


def vote(similarities: Sequence[float], names: Sequence[str], threshold: float = DEFAULT_REC_THRESHOLD) -> Match:
    """One query's top-k candidates → a name.

    Candidates at or above ``threshold`` vote for their name; the name with most votes wins, ties broken by
    the higher best similarity. With no candidate above the threshold the face is ``unknown``.
    """
    similarities = np.asarray(similarities, dtype=np.float64)
    if len(similarities) == 0:
        return Match(UNKNOWN, float("nan"))
    tally: dict[str, list] = {}
    for similarity, name in zip(similarities, names):
        if similarity >= threshold:
            votes = tally.setdefault(name, [0, -np.inf])
            votes[0] += 1
            votes[1] = max(votes[1], similarity)
    if not tally:
        return Match(UNKNOWN, float(similarities.max()))
    name, (_, best) = max(tally.items(), key=lambda item: (item[1][0], item[1][1]))
    return Match(name, float(best))


def match_embeddings(index, embeddings: np.ndarray, threshold: float = DEFAULT_REC_THRESHOLD,
                     top_k: int = DEFAULT_CANDIDATES, backend: str = "numpy") -> list[Match]:
    """Search ``index`` (a GalleryIndex) for each embedding and vote among its ``top_k`` nearest rows."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if len(embeddings) == 0:
        return []
    similarities, rows = index.search(embeddings, top_k=top_k, backend=backend)
    return [vote(sims, [index.name_of(row) for row in row_ids], threshold)
            for sims, row_ids in zip(similarities, rows)]


def embedding_distance(similarity: float) -> float:
    """Euclidean distance between the two L2-normalised embeddings: sqrt(2 - 2·cos)."""
    return float(np.sqrt(max(0.0, 2.0 - 2.0 * similarity)))


def recognition_threshold(config: ModelConfig) -> tuple[float, str]:
    """``(cosine threshold, where it comes from)`` when the user gives none: the model's own best-accuracy
    threshold from its ``model.yaml`` (written by ``valid.py --write_thresholds``), else the SFace default."""
    measured = model_threshold(config)
    if measured is not None:
        return measured
    source = "default, measured for the shipped SFace model"
    try:
        shipped = config.model_id is not None and config.model_id == load_model_config(DEFAULT_RECOGNIZER).model_id
    except ToolkitError:     # an installation without the shipped model
        shipped = False
    if shipped:
        return DEFAULT_REC_THRESHOLD, source
    return DEFAULT_REC_THRESHOLD, (f"{source} — NOT for this model: its model.yaml has no thresholds "
                                   f"(valid.py --write_thresholds TARGET adds them)")
