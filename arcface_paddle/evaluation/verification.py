"""Verification protocol (LFW / CFP-FP / AgeDB-30 style): embed pairs, score them, summarise.

Each image and its horizontal flip are embedded, the two embeddings summed, then L2-normalised; pair
``k`` is rows ``2k`` and ``2k+1``.  Accuracy is 10-fold cross-validated (best threshold chosen on nine
folds, applied to the tenth), reported as mean ± std.  XNorm is the mean L2 norm of the raw embeddings
of the un-flipped images.  TAR@FAR is reported for each FAR the number of impostor pairs can measure.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Optional, Sequence

import numpy as np
from tqdm import tqdm

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import normalize_rgb_uint8
from arcface_paddle.evaluation import metrics
from arcface_paddle.preprocessing import TRAIN_MEAN, TRAIN_STD

EmbedFn = Callable[[np.ndarray], np.ndarray]   # N×H×W×3 uint8 RGB → N×D float32


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
    scores: Optional[np.ndarray] = dataclasses.field(default=None, repr=False)   # per-pair cosine
    labels: Optional[np.ndarray] = dataclasses.field(default=None, repr=False)   # per-pair issame

    def as_dict(self) -> dict:
        """JSON-ready summary (no per-pair arrays; FAR keys as strings like ``"1e-03"``)."""
        return {
            "accuracy": self.accuracy,
            "accuracy_std": self.accuracy_std,
            "best_threshold": self.best_threshold,
            "xnorm": self.xnorm,
            "tar_at_far": {f"{far:.0e}": tar for far, tar in self.tar_at_far.items()},
            "auc": self.auc,
            "num_pairs": self.num_pairs,
            "fold_accuracies": self.fold_accuracies,
        }


def _check_pairs(num_rows: int, issame: np.ndarray, what: str) -> np.ndarray:
    issame = np.asarray(issame).astype(bool).reshape(-1)
    if num_rows != 2 * issame.size:
        raise ToolkitError(f"{what}: {num_rows} rows but {issame.size} pair labels (need exactly two rows per pair)")
    return issame


def evaluate_embeddings(embeddings: np.ndarray, issame: Sequence[bool], raw_embeddings: Optional[np.ndarray] = None,
                        n_folds: int = 10, fars: Sequence[float] = metrics.DEFAULT_FARS) -> VerificationResult:
    """Metrics for ``embeddings`` (N×D; image i and its flip already summed, not yet normalised).

    ``raw_embeddings`` (the un-flipped images' embeddings) gives XNorm; without it XNorm is taken
    from ``embeddings`` themselves.
    """
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2:
        raise ToolkitError(f"embeddings: expected N×D, got shape {embeddings.shape}")
    labels = _check_pairs(embeddings.shape[0], issame, "embeddings")
    if labels.size < n_folds:
        raise ToolkitError(f"verification set: {labels.size} pairs, {n_folds}-fold cross-validation needs >= {n_folds}")
    if not np.all(np.isfinite(embeddings)):
        raise ToolkitError("embeddings: contain NaN or Inf (the model diverged or its weights are corrupt)")
    scores = metrics.pair_scores(embeddings)
    fold_accuracies, _ = metrics.kfold_accuracy(scores, labels, n_folds=n_folds)
    threshold, _ = metrics.best_threshold(scores, labels)
    both_classes = 0 < labels.sum() < labels.size
    return VerificationResult(
        accuracy=float(fold_accuracies.mean()),
        accuracy_std=float(fold_accuracies.std()),
        best_threshold=threshold,
        xnorm=metrics.mean_l2_norm(embeddings if raw_embeddings is None else raw_embeddings),
        tar_at_far=metrics.tar_at_fars(scores, labels, fars) if both_classes else {},
        num_pairs=int(labels.size),
        auc=metrics.roc_auc(scores, labels) if both_classes else None,
        fold_accuracies=[float(a) for a in fold_accuracies],
        scores=scores,
        labels=labels,
    )


def flip_embeddings(embed_fn: EmbedFn, images: np.ndarray, batch_size: int = 64, progress: bool = False,
                    desc: str = "embedding"):
    """``(flip_summed, raw)``: ``embed(x) + embed(hflip(x))`` and ``embed(x)`` for N×H×W×3 uint8 images."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ToolkitError(f"images: expected N×H×W×3, got shape {images.shape}")
    if batch_size < 1:
        raise ToolkitError(f"batch size must be >= 1, got {batch_size}")
    starts = range(0, images.shape[0], batch_size)
    if progress:
        starts = tqdm(starts, desc=desc, unit="batch", total=len(starts))
    summed, raw = [], []
    for start in starts:
        batch = images[start:start + batch_size]
        both = embed_fn(np.concatenate([batch, batch[:, :, ::-1]], axis=0))   # one call for image + flip
        plain, flipped = both[:len(batch)], both[len(batch):]
        raw.append(plain)
        summed.append(plain + flipped)
    return np.concatenate(summed).astype(np.float32), np.concatenate(raw).astype(np.float32)


def evaluate_images(embed_fn: EmbedFn, images: np.ndarray, issame: Sequence[bool], batch_size: int = 64,
                    progress: bool = False, desc: str = "embedding", **kwargs) -> VerificationResult:
    """Embed (with flips) and evaluate; ``embed_fn`` maps uint8 RGB N×H×W×3 to N×D."""
    _check_pairs(np.asarray(images).shape[0], issame, "images")
    summed, raw = flip_embeddings(embed_fn, images, batch_size=batch_size, progress=progress, desc=desc)
    return evaluate_embeddings(summed, issame, raw_embeddings=raw, **kwargs)


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
