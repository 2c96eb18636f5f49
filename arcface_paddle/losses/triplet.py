"""Triplet loss with online mining (FaceNet, Schroff et al. 2015) on L2-normalised embeddings.

Distances are squared Euclidean between unit vectors, ``d = 2 − 2·cos`` (in [0, 4]); the loss of a triplet
(anchor a, positive p, negative n) is ``max(d(a,p) − d(a,n) + margin, 0)``.  Triplets are mined inside the
batch (P identities × K images, see ``training.samplers.IdentityBatchSampler``):

* ``semi_hard`` — for every anchor-positive pair, the closest negative that is still farther than the
  positive (``d(a,n) > d(a,p)``); when no such negative exists, the farthest negative closer than it
  (the easiest "hard" one), as FaceNet and TF-Addons do.  Loss = mean over anchor-positive pairs.
* ``batch_all`` — every valid triplet; loss = mean over the triplets with positive loss.
* ``batch_hard`` — per anchor, the farthest positive and the closest negative (Hermans et al. 2017).

The mining choice is made without gradient; the loss is differentiable in the chosen distances.
"""
from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from arcface_paddle.core.errors import ToolkitError

MINING = ("semi_hard", "batch_all", "batch_hard")


def pairwise_squared_distances(embeddings: paddle.Tensor) -> paddle.Tensor:
    """N×N squared Euclidean distances of the L2-normalised rows, ``2 − 2·cos`` clipped at 0."""
    unit = F.normalize(embeddings, axis=1)
    return paddle.clip(2.0 - 2.0 * paddle.matmul(unit, unit, transpose_y=True), min=0.0)


def _masks(labels: paddle.Tensor):
    labels = labels.reshape([-1])
    same = labels.unsqueeze(1) == labels.unsqueeze(0)
    eye = paddle.eye(labels.shape[0]).astype("bool")
    return paddle.logical_and(same, paddle.logical_not(eye)), paddle.logical_not(same)


def triplet_loss(embeddings: paddle.Tensor, labels: paddle.Tensor, margin: float = 0.2,
                 mining: str = "semi_hard") -> paddle.Tensor:
    """Mean online-mined triplet loss of a batch (0 when the batch has no valid triplet)."""
    if mining not in MINING:
        raise ToolkitError(f"unknown triplet mining {mining!r}; choose one of: {', '.join(MINING)}")
    dist = pairwise_squared_distances(embeddings)
    positive, negative = _masks(labels)
    if mining == "batch_all":
        return _batch_all(dist, positive, negative, margin)
    if mining == "batch_hard":
        return _batch_hard(dist, positive, negative, margin)
    return _semi_hard(dist, positive, negative, margin)


def _semi_hard(dist, positive, negative, margin):
    n = dist.shape[0]
    with paddle.no_grad():
        d = dist.detach()
        big = paddle.full_like(d, 1e9)
        # [a, p, n]: negative n of anchor a lies beyond the positive p
        beyond = paddle.logical_and(negative.unsqueeze(1), d.unsqueeze(1) > d.unsqueeze(2))
        candidates = paddle.where(beyond, d.unsqueeze(1).expand([n, n, n]), big.unsqueeze(1).expand([n, n, n]))
        nearest_beyond = paddle.argmin(candidates, axis=2)                       # a×p
        has_beyond = beyond.any(axis=2)
        inside = paddle.where(negative, d, paddle.full_like(d, -1.0))
        farthest_inside = paddle.argmax(inside, axis=1, keepdim=True).expand([n, n])
        chosen = paddle.where(has_beyond, nearest_beyond, farthest_inside)
    anchor_negative = paddle.take_along_axis(dist, chosen, axis=1)
    losses = F.relu(dist - anchor_negative + margin)
    valid = paddle.logical_and(positive, negative.any(axis=1, keepdim=True)).astype(dist.dtype)
    return (losses * valid).sum() / paddle.clip(valid.sum(), min=1.0)


def _batch_all(dist, positive, negative, margin):
    losses = F.relu(dist.unsqueeze(2) - dist.unsqueeze(1) + margin)              # [a, p, n]
    valid = paddle.logical_and(positive.unsqueeze(2), negative.unsqueeze(1)).astype(dist.dtype)
    losses = losses * valid
    active = (losses > 1e-12).astype(dist.dtype)
    return losses.sum() / paddle.clip(active.sum(), min=1.0)


def _batch_hard(dist, positive, negative, margin):
    hardest_positive = (dist * positive.astype(dist.dtype)).max(axis=1)
    hardest_negative = paddle.where(negative, dist, paddle.full_like(dist, 1e9)).min(axis=1)
    valid = paddle.logical_and(positive.any(axis=1), negative.any(axis=1)).astype(dist.dtype)
    losses = F.relu(hardest_positive - hardest_negative + margin) * valid
    return losses.sum() / paddle.clip(valid.sum(), min=1.0)


class TripletLoss(nn.Layer):
    """``forward(embeddings N×D, labels N) -> scalar`` with the configured margin and mining."""

    def __init__(self, margin: float = 0.2, mining: str = "semi_hard"):
        super().__init__()
        if margin < 0:
            raise ToolkitError(f"triplet margin must be >= 0, got {margin}")
        if mining not in MINING:
            raise ToolkitError(f"unknown triplet mining {mining!r}; choose one of: {', '.join(MINING)}")
        self.margin, self.mining = float(margin), mining

    def forward(self, embeddings, labels):
        return triplet_loss(embeddings, labels, self.margin, self.mining)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, mining={self.mining}"
