"""Pure metric functions for face verification, checked in tests against hand-computed values.

Scores are cosine similarities of L2-normalised embeddings (higher = more alike); a pair is called
"same person" when ``score >= threshold``.  On unit vectors the squared Euclidean distance used by the
reference (``d² = 2 - 2·cos``) orders pairs the same way, so accuracies agree; our threshold is the
cosine one, which is what the recognition pipeline's ``rec_thresh`` compares against.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, Tuple

import numpy as np

from arcface_paddle.core.embeddings import l2_normalize

DEFAULT_FARS = (1e-3, 1e-4)


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


def kfold_indices(num_items: int, n_folds: int) -> list:
    """Contiguous, unshuffled folds (as sklearn's ``KFold(shuffle=False)``): the first ``n % k`` get one extra."""
    sizes = np.full(n_folds, num_items // n_folds)
    sizes[: num_items % n_folds] += 1
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return [np.arange(bounds[i], bounds[i + 1]) for i in range(n_folds)]


def kfold_accuracy(scores: np.ndarray, labels: np.ndarray, n_folds: int = 10) -> Tuple[np.ndarray, np.ndarray]:
    """Cross-validated accuracy: pick the best threshold on 9 folds, score the 10th.

    Returns ``(fold_accuracies, fold_thresholds)``.  Folds are contiguous, unshuffled (as the LFW
    protocol and the reference): the pair order in a ``.bin`` file decides them.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must be equal-length vectors")
    if scores.size < n_folds:
        raise ValueError(f"{n_folds}-fold cross-validation needs at least {n_folds} pairs, got {scores.size}")
    accuracies, thresholds = [], []
    for test_index in kfold_indices(scores.size, n_folds):
        train = np.ones(scores.size, dtype=bool)
        train[test_index] = False
        threshold, _ = best_threshold(scores[train], labels[train])
        thresholds.append(threshold)
        accuracies.append(accuracy_at(scores[test_index], labels[test_index], threshold))
    return np.asarray(accuracies), np.asarray(thresholds)


def far_is_measurable(num_negatives: int, far: float) -> bool:
    """A FAR of ``far`` means something only when at least one false accept is allowed at it."""
    return num_negatives * far >= 1.0 - 1e-9


def tar_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> float:
    """True accept rate at the strictest threshold letting at most ``floor(far · negatives)`` impostors in.

    With negatives sorted high to low, the threshold sits at the ``(allowed+1)``-th negative score and
    a pair is accepted when strictly above it, so ties never push the FAR over its target.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    positives, negatives = scores[labels], np.sort(scores[~labels])[::-1]
    if positives.size == 0 or negatives.size == 0:
        raise ValueError("TAR@FAR needs both positive and negative pairs")
    allowed = int(math.floor(far * negatives.size + 1e-9))
    if allowed >= negatives.size:
        return 1.0
    return float(np.mean(positives > negatives[allowed]))


def tar_at_fars(scores: np.ndarray, labels: np.ndarray, fars: Iterable[float] = DEFAULT_FARS) -> Dict[float, float]:
    """TAR at each FAR that the number of negative pairs can measure (others are left out)."""
    num_negatives = int(np.sum(~np.asarray(labels, dtype=bool)))
    return {far: tar_at_far(scores, labels, far) for far in fars if far_is_measurable(num_negatives, far)}


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``, one point per distinct score (high → low) after a leading ``(0, 0, inf)``.

    Point ``i`` is the rates when ``score >= thresholds[i]`` is accepted (sklearn's convention).
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("a ROC curve needs both positive and negative pairs")
    order = np.argsort(-scores, kind="stable")
    ordered, ordered_labels = scores[order], labels[order]
    last_of_run = np.r_[ordered[1:] != ordered[:-1], True]      # accept a whole run of equal scores at once
    true_accepts = np.cumsum(ordered_labels)[last_of_run]
    false_accepts = np.cumsum(~ordered_labels)[last_of_run]
    tpr = np.r_[0.0, true_accepts / positives]
    fpr = np.r_[0.0, false_accepts / negatives]
    return fpr, tpr, np.r_[np.inf, ordered[last_of_run]]


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under :func:`roc_curve` (trapezoids; ties count one half, as Mann–Whitney U)."""
    fpr, tpr, _ = roc_curve(scores, labels)
    return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0))
