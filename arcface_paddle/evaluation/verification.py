"""Verification protocol (LFW / CFP-FP / AgeDB-30 style): embed pairs, score them, summarise.

Each image and its horizontal flip are embedded, the two embeddings summed, then L2-normalised; pair
``k`` is rows ``2k`` and ``2k+1``.  Accuracy is 10-fold cross-validated (a threshold chosen on nine folds,
applied to the tenth), reported as mean ± std, by the ``exact`` protocol (default) or insightface's
``reference`` grid protocol (:mod:`.metrics` says how they differ).  XNorm is the mean L2 norm of the raw
embeddings: of the un-flipped images (``exact``), of both flips (``reference``, as insightface reports it).
TAR@FAR and the cosine threshold reaching each FAR are given for every requested FAR the number of impostor
pairs can measure; the requested set travels with the result so every report shows the same columns.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
from sklearn.metrics import roc_auc_score
from tqdm import tqdm

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import normalize_rgb_uint8
from arcface_paddle.evaluation import metrics
from arcface_paddle.preprocessing import TRAIN_MEAN, TRAIN_STD

EmbedFn = Callable[[np.ndarray], np.ndarray]   # N×H×W×3 uint8 RGB → N×D float32


def far_label(far: float) -> str:
    """``1e-03``: how a FAR is written in every report (table column, JSON key, VisualDL tag)."""
    return f"{far:.0e}"


@dataclasses.dataclass
class VerificationResult:
    accuracy: float                 # mean of the fold accuracies, in [0, 1]
    accuracy_std: float
    best_threshold: float           # cosine-similarity threshold with the best accuracy on all pairs
    xnorm: float
    tar_at_far: Dict[float, float]  # {far: tar}, only FARs the impostor count can measure
    num_pairs: int
    auc: Optional[float] = None
    fold_accuracies: Optional[list] = None
    protocol: str = "exact"
    fars: Tuple[float, ...] = metrics.DEFAULT_FARS            # the FARs asked for (the report's columns)
    threshold_at_far: Dict[float, float] = dataclasses.field(default_factory=dict)   # {far: cosine threshold}
    best_accuracy: Optional[float] = None                     # accuracy at best_threshold on all pairs
    scores: Optional[np.ndarray] = dataclasses.field(default=None, repr=False)   # per-pair cosine
    labels: Optional[np.ndarray] = dataclasses.field(default=None, repr=False)   # per-pair issame

    def as_dict(self) -> dict:
        """JSON-ready summary (no per-pair arrays).  ``tar_at_far`` and ``threshold_at_far`` have a key for
        every requested FAR (``"1e-03"``), null where the impostor count cannot measure it."""
        return {
            "protocol": self.protocol,
            "accuracy": self.accuracy,
            "accuracy_std": self.accuracy_std,
            "best_threshold": self.best_threshold,
            "best_accuracy": self.best_accuracy,
            "xnorm": self.xnorm,
            "tar_at_far": {far_label(far): self.tar_at_far.get(far) for far in self.fars},
            "threshold_at_far": {far_label(far): self.threshold_at_far.get(far) for far in self.fars},
            "auc": self.auc,
            "num_pairs": self.num_pairs,
            "fold_accuracies": self.fold_accuracies,
        }


def _check_pairs(num_rows: int, issame: np.ndarray, what: str) -> np.ndarray:
    issame = np.asarray(issame).astype(bool).reshape(-1)
    if num_rows != 2 * issame.size:
        raise ToolkitError(f"{what}: {num_rows} rows but {issame.size} pair labels (need exactly two rows per pair)")
    return issame


def check_protocol(protocol: str) -> str:
    if protocol not in metrics.PROTOCOLS:
        raise ToolkitError(f"verification protocol must be one of {', '.join(metrics.PROTOCOLS)}, got {protocol!r}")
    return protocol


def evaluate_embeddings(embeddings: np.ndarray, issame: Sequence[bool], raw_embeddings: Optional[np.ndarray] = None,
                        n_folds: int = 10, fars: Sequence[float] = metrics.DEFAULT_FARS,
                        protocol: str = "exact") -> VerificationResult:
    """Metrics for ``embeddings`` (N×D; image i and its flip already summed, not yet normalised).

    ``raw_embeddings`` (any number of rows of raw embeddings) gives XNorm; without it XNorm is taken
    from ``embeddings`` themselves.
    """
    check_protocol(protocol)
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2:
        raise ToolkitError(f"embeddings: expected N×D, got shape {embeddings.shape}")
    labels = _check_pairs(embeddings.shape[0], issame, "embeddings")
    if labels.size < n_folds:
        raise ToolkitError(f"verification set: {labels.size} pairs, {n_folds}-fold cross-validation needs >= {n_folds}")
    if not np.all(np.isfinite(embeddings)):
        raise ToolkitError("embeddings: contain NaN or Inf (the model diverged or its weights are corrupt)")
    scores = metrics.pair_scores(embeddings)
    if protocol == "reference":
        fold_accuracies, _ = metrics.reference_kfold_accuracy(scores, labels, n_folds=n_folds)
        threshold, best_accuracy = metrics.reference_best_threshold(scores, labels)
    else:
        fold_accuracies, _ = metrics.kfold_accuracy(scores, labels, n_folds=n_folds)
        threshold, best_accuracy = metrics.best_threshold(scores, labels)
    both_classes = 0 < labels.sum() < labels.size
    fars = tuple(float(far) for far in fars)
    at_far = {far: metrics.threshold_at_far(scores, labels, far) for far in fars} if both_classes else {}
    return VerificationResult(
        accuracy=float(fold_accuracies.mean()),
        accuracy_std=float(fold_accuracies.std()),
        best_threshold=threshold,
        xnorm=metrics.mean_l2_norm(embeddings if raw_embeddings is None else raw_embeddings),
        tar_at_far=metrics.tar_at_fars(scores, labels, fars) if both_classes else {},
        num_pairs=int(labels.size),
        auc=float(roc_auc_score(labels, scores)) if both_classes else None,
        fold_accuracies=[float(a) for a in fold_accuracies],
        protocol=protocol,
        fars=fars,
        threshold_at_far={far: value for far, value in at_far.items() if value is not None},
        best_accuracy=best_accuracy,
        scores=scores,
        labels=labels,
    )


def flip_embeddings(embed_fn: EmbedFn, images: np.ndarray, batch_size: int = 64, progress: bool = False,
                    desc: str = "embedding"):
    """``(flip_summed, plain, flipped)``: ``embed(x) + embed(hflip(x))``, ``embed(x)`` and ``embed(hflip(x))``
    for N×H×W×3 uint8 images."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ToolkitError(f"images: expected N×H×W×3, got shape {images.shape}")
    if batch_size < 1:
        raise ToolkitError(f"batch size must be >= 1, got {batch_size}")
    starts = range(0, images.shape[0], batch_size)
    if progress:
        starts = tqdm(starts, desc=desc, unit="batch", total=len(starts))
    plain_parts, flipped_parts = [], []
    for start in starts:
        batch = images[start:start + batch_size]
        both = embed_fn(np.concatenate([batch, batch[:, :, ::-1]], axis=0))   # one call for image + flip
        plain_parts.append(both[:len(batch)])
        flipped_parts.append(both[len(batch):])
    plain = np.concatenate(plain_parts).astype(np.float32)
    flipped = np.concatenate(flipped_parts).astype(np.float32)
    return plain + flipped, plain, flipped


def evaluate_images(embed_fn: EmbedFn, images: np.ndarray, issame: Sequence[bool], batch_size: int = 64,
                    progress: bool = False, desc: str = "embedding", protocol: str = "exact",
                    **kwargs) -> VerificationResult:
    """Embed (with flips) and evaluate; ``embed_fn`` maps uint8 RGB N×H×W×3 to N×D."""
    check_protocol(protocol)
    _check_pairs(np.asarray(images).shape[0], issame, "images")
    summed, plain, flipped = flip_embeddings(embed_fn, images, batch_size=batch_size, progress=progress, desc=desc)
    raw = np.concatenate([plain, flipped]) if protocol == "reference" else plain
    return evaluate_embeddings(summed, issame, raw_embeddings=raw, protocol=protocol, **kwargs)


def layer_embed_fn(layer, mean: float = TRAIN_MEAN, std: float = TRAIN_STD) -> EmbedFn:
    """An :data:`EmbedFn` running an eager paddle layer (no grad) on ``(x - mean) / std`` RGB input."""
    import paddle  # heavy (paddle): imported on first use

    def embed(images: np.ndarray) -> np.ndarray:
        with paddle.no_grad():
            output = layer(paddle.to_tensor(normalize_rgb_uint8(images, mean, std)))
        return output.numpy().astype(np.float32)
    return embed


def evaluate_layer(layer, images_uint8_rgb: np.ndarray, issame: Sequence[bool], batch_size: int = 64,
                   progress: bool = False, **kwargs) -> VerificationResult:
    """Evaluate an eager backbone (switched to eval mode, restored afterwards) on verification pairs."""
    was_training = layer.training
    layer.eval()
    try:
        return evaluate_images(layer_embed_fn(layer), images_uint8_rgb, issame, batch_size=batch_size,
                               progress=progress, **kwargs)
    finally:
        if was_training:
            layer.train()
