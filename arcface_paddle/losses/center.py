"""Center loss (Wen et al., ECCV 2016): pull each embedding towards a learned centre of its class.

``loss = mean_i ½·‖f̂_i − c_{y_i}‖²`` on L2-normalised embeddings ``f̂`` (so it is scale-free beside a
cosine-margin softmax).  It is an auxiliary term — alone it collapses every class onto one point — added as
``center_loss_weight × center_loss`` beside the softmax (or triplet) loss.

Centres are updated in one of two ways (``update``):

* ``gradient`` — the centres are a parameter trained by the optimizer with everything else;
* ``mean`` — the paper's rule, no gradient into the centres: after each step
  ``c_j ← c_j − α·Σ_{i: y_i=j}(c_j − f̂_i) / (1 + n_j)`` (call :meth:`CenterLoss.update_centers`).

Centres are replicated on every process and the loss is computed on the batch gathered from every rank, so
the ``mean`` update is the same everywhere with no communication, and in ``gradient`` mode only the gradient
rows of the classes in the batch are summed over ranks (:func:`.distributed.sum_gradient_rows`), never the
whole classes × D matrix.  Memory at a million classes: ``mean`` touches only the batch's rows (no batch ×
classes one-hot, no optimizer state); ``gradient`` keeps a dense gradient and momentum beside the centres.
"""
from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from arcface_paddle.core.errors import ToolkitError

UPDATES = ("gradient", "mean")


class CenterLoss(nn.Layer):
    def __init__(self, num_classes: int, embedding_size: int, update: str = "gradient", alpha: float = 0.5):
        super().__init__()
        if update not in UPDATES:
            raise ToolkitError(f"unknown center_loss.update {update!r}; choose one of: {', '.join(UPDATES)}")
        if not 0.0 < alpha <= 1.0:
            raise ToolkitError(f"center_loss.alpha must be in (0, 1], got {alpha}")
        self.update, self.alpha = update, float(alpha)
        self.num_classes, self.embedding_size = int(num_classes), int(embedding_size)
        self.centers = self.create_parameter(
            [self.num_classes, self.embedding_size],
            default_initializer=nn.initializer.Normal(0.0, 1.0 / self.embedding_size ** 0.5))
        self.centers.stop_gradient = update != "gradient"

    def forward(self, embeddings: paddle.Tensor, labels: paddle.Tensor) -> paddle.Tensor:
        unit = F.normalize(embeddings, axis=1)
        centers = paddle.gather(self.centers, labels.reshape([-1]).astype("int64"), axis=0)
        if self.update == "mean":
            centers = centers.detach()
        return 0.5 * ((unit - centers) ** 2).sum(axis=1).mean()

    def class_statistics(self, embeddings: paddle.Tensor, labels: paddle.Tensor):
        """(classes in the batch, per-class sum of ``c_j − f̂_i``, per-class count) — one row per class present,
        so the cost follows the batch, not the number of classes."""
        with paddle.no_grad():
            unit = F.normalize(embeddings.detach(), axis=1)
            labels = labels.reshape([-1]).astype("int64")
            classes, position = paddle.unique(labels, return_inverse=True)
            diffs = paddle.gather(self.centers, labels, axis=0) - unit
            sums = paddle.index_add(paddle.zeros([classes.shape[0], self.embedding_size], dtype=unit.dtype),
                                    position, 0, diffs)
            counts = paddle.index_add(paddle.zeros([classes.shape[0]], dtype=unit.dtype), position, 0,
                                      paddle.ones([labels.shape[0]], dtype=unit.dtype))
            return classes, sums, counts

    def update_centers(self, classes: paddle.Tensor, diff_sums: paddle.Tensor, counts: paddle.Tensor) -> None:
        """The paper's running-mean step on the rows of ``classes`` (from :meth:`class_statistics`); other rows
        are not touched (no classes × D temporary)."""
        with paddle.no_grad():
            step = self.alpha * diff_sums / (1.0 + counts.unsqueeze(1))
            paddle.scatter_(self.centers, classes, paddle.gather(self.centers, classes, axis=0) - step)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, embedding_size={self.embedding_size}, update={self.update}"
