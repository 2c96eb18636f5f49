"""Pure metric functions for face verification (ROC, AUC and folds from scikit-learn).

Scores are cosine similarities of L2-normalised embeddings (higher = more alike); a pair is called
"same person" when ``score >= threshold``.  On unit vectors the squared Euclidean distance used by the
reference (``d² = 2 - 2·cos``) orders pairs the same way; our thresholds are always cosine ones, which is
what the recognition pipeline's ``rec_thresh`` compares against.

Two accuracy protocols (both 10-fold, contiguous unshuffled folds):

* ``exact`` (default): each fold's threshold is the exact best-accuracy cut of the other nine folds' scores
  (:func:`best_threshold`, every distinct cut tried) — the best the data allows, at any resolution, and the
  threshold a model is then deployed with;
* ``reference``: insightface's verification protocol — squared L2 distances of the normalised flip-summed
  embeddings, thresholds on the grid ``0, 0.01, ..., 3.99`` (``d² < t`` is "same"), the first best grid
  point of the nine folds applied to the tenth — so LFW / CFP-FP / AgeDB-30 numbers compare with
  published tables (the grid's 0.005 cosine resolution can cost a few hundredths of a percent).
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, Optional, Tuple

import numpy as np
from sklearn.model_selection import KFold

from arcface_paddle.core.embeddings import l2_normalize

DEFAULT_FARS = (1e-2, 1e-3, 1e-4)
PROTOCOLS = ("exact", "reference")
REFERENCE_GRID = np.arange(0.0, 4.0, 0.01)      # squared-L2 thresholds of the reference protocol


def mean_l2_norm(embeddings: np.ndarray) -> float:
    """XNorm: the mean L2 norm of raw (un-normalised) embeddings — a health signal while training."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    return float(np.linalg.norm(embeddings, axis=1).mean())


def pair_scores(embeddings: np.ndarray) -> np.ndarray:
    """Cosine similarity of rows ``2k`` and ``2k+1`` (the verification ``.bin`` layout)."""
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2 or embeddings.shape[0] % 2:
        raise ValueError(f"expected an even number of embedding rows (pairs), got shape {embeddings.shape}")
    unit = l2_normalize(embeddings, dtype=np.float64)     # float64 for stable metrics
    return np.sum(unit[0::2] * unit[1::2], axis=1)


def accuracy_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """Fraction of pairs classified correctly when ``score >= threshold`` means same person."""
    scores, labels = np.asarray(scores), np.asarray(labels, dtype=bool)
    return float(np.mean((scores >= threshold) == labels))


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> Tuple[float, float]:
    """Exact best-accuracy threshold: ``(threshold, accuracy)``.

    Every distinct cut of the sorted scores is tried (not a fixed grid), in O(n log n).  The
    threshold is the midpoint between the two scores around the cut; ties in accuracy go to the
    highest threshold (the stricter decision).
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    if scores.size == 0:
        raise ValueError("no pairs to choose a threshold from")
    order = np.argsort(-scores, kind="stable")
    ordered, ordered_labels = scores[order], labels[order]
    # accepted[k] = the top k scores called "same": correct = positives among them + negatives below.
    true_accepts = np.concatenate([[0], np.cumsum(ordered_labels)])
    false_accepts = np.concatenate([[0], np.cumsum(~ordered_labels)])
    correct = true_accepts + (false_accepts[-1] - false_accepts)
    cut_allowed = np.ones(scores.size + 1, dtype=bool)
    cut_allowed[1:-1] = ordered[:-1] > ordered[1:]      # a cut inside a run of equal scores is impossible
    correct = np.where(cut_allowed, correct, -1)
    k = int(np.argmax(correct))
    if k == 0:
        threshold = float(np.nextafter(ordered[0], np.inf))
    elif k == scores.size:
        threshold = float(ordered[-1])
    else:
        threshold = float((ordered[k - 1] + ordered[k]) / 2.0)
    return threshold, float(correct[k] / scores.size)


def _check_vectors(scores: np.ndarray, labels: np.ndarray, n_folds: int) -> Tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must be equal-length vectors")
    if scores.size < n_folds:
        raise ValueError(f"{n_folds}-fold cross-validation needs at least {n_folds} pairs, got {scores.size}")
    return scores, labels


def kfold_accuracy(scores: np.ndarray, labels: np.ndarray, n_folds: int = 10) -> Tuple[np.ndarray, np.ndarray]:
    """Cross-validated accuracy (``exact`` protocol): pick the best threshold on 9 folds, score the 10th.

    Returns ``(fold_accuracies, fold_thresholds)``.  Folds are contiguous, unshuffled (sklearn's
    ``KFold(shuffle=False)``, as the LFW protocol and the reference): the pair order in a ``.bin`` file
    decides them.
    """
    scores, labels = _check_vectors(scores, labels, n_folds)
    accuracies, thresholds = [], []
    for train, test in KFold(n_splits=n_folds, shuffle=False).split(scores):
        threshold, _ = best_threshold(scores[train], labels[train])
        thresholds.append(threshold)
        accuracies.append(accuracy_at(scores[test], labels[test], threshold))
    return np.asarray(accuracies), np.asarray(thresholds)


def reference_kfold_accuracy(scores: np.ndarray, labels: np.ndarray, n_folds: int = 10,
                             grid: np.ndarray = REFERENCE_GRID) -> Tuple[np.ndarray, np.ndarray]:
    """Cross-validated accuracy (``reference`` protocol) from cosine ``scores``.

    Distances are ``d² = 2 - 2·cos`` (the squared L2 distance of unit vectors); a pair is "same" when
    ``d² < t`` for a grid threshold ``t``; each fold uses the first grid point with the best accuracy on the
    other folds.  Returns ``(fold_accuracies, fold_thresholds)``, thresholds as squared distances.
    """
    scores, labels = _check_vectors(scores, labels, n_folds)
    distances = 2.0 - 2.0 * scores
    correct = (distances[None, :] < np.asarray(grid, dtype=np.float64)[:, None]) == labels[None, :]   # T × N
    accuracies, thresholds = [], []
    for train, test in KFold(n_splits=n_folds, shuffle=False).split(scores):
        best = int(np.argmax(correct[:, train].sum(axis=1)))
        thresholds.append(float(grid[best]))
        accuracies.append(float(correct[best, test].mean()))
    return np.asarray(accuracies), np.asarray(thresholds)


def reference_best_threshold(scores: np.ndarray, labels: np.ndarray,
                             grid: np.ndarray = REFERENCE_GRID) -> Tuple[float, float]:
    """``(cosine threshold, accuracy)`` of the first best grid point over all pairs (``reference`` protocol):
    ``d² < t`` ⇔ ``cos > 1 - t/2``."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    correct = ((2.0 - 2.0 * scores)[None, :] < np.asarray(grid, dtype=np.float64)[:, None]) == labels[None, :]
    accuracy = correct.mean(axis=1)
    best = int(np.argmax(accuracy))
    return float(1.0 - grid[best] / 2.0), float(accuracy[best])


def far_is_measurable(num_negatives: int, far: float) -> bool:
    """A FAR of ``far`` means something only when at least one false accept is allowed at it."""
    return num_negatives * far >= 1.0 - 1e-9


def _negatives_allowed(labels: np.ndarray, scores: np.ndarray, far: float) -> Tuple[np.ndarray, np.ndarray, int]:
    positives, negatives = scores[labels], np.sort(scores[~labels])[::-1]
    if positives.size == 0 or negatives.size == 0:
        raise ValueError("TAR@FAR needs both positive and negative pairs")
    return positives, negatives, int(math.floor(far * negatives.size + 1e-9))


def tar_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> float:
    """True accept rate at the strictest threshold letting at most ``floor(far · negatives)`` impostors in.

    With negatives sorted high to low, the threshold sits at the ``(allowed+1)``-th negative score and
    a pair is accepted when strictly above it, so ties never push the FAR over its target.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    positives, negatives, allowed = _negatives_allowed(labels, scores, far)
    if allowed >= negatives.size:
        return 1.0
    return float(np.mean(positives > negatives[allowed]))


def threshold_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> Optional[float]:
    """The lowest cosine threshold ``t`` at which ``score >= t`` accepts at most ``floor(far · negatives)``
    impostors — the operating point :func:`tar_at_far` measures (None when the FAR is not measurable)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    if not far_is_measurable(int(np.sum(~labels)), far):
        return None
    _, negatives, allowed = _negatives_allowed(labels, scores, far)
    if allowed >= negatives.size:
        return float(negatives[-1])
    return float(np.nextafter(negatives[allowed], np.inf))


def tar_at_fars(scores: np.ndarray, labels: np.ndarray, fars: Iterable[float] = DEFAULT_FARS) -> Dict[float, float]:
    """TAR at each FAR that the number of negative pairs can measure (others are left out)."""
    num_negatives = int(np.sum(~np.asarray(labels, dtype=bool)))
    return {far: tar_at_far(scores, labels, far) for far in fars if far_is_measurable(num_negatives, far)}
