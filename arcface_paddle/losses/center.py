"""Center loss (Wen et al., ECCV 2016): pull each embedding towards a learned centre of its class.

``loss = mean_i ½·‖f̂_i − c_{y_i}‖²`` on L2-normalised embeddings ``f̂`` (so it is scale-free beside a
cosine-margin softmax).  It is an auxiliary term — alone it collapses every class onto one point — added as
``center_loss_weight × center_loss`` beside the softmax (or triplet) loss.

Centres are updated in one of two ways (``update``):

* ``gradient`` — the centres are a parameter trained by the optimizer with everything else;
* ``mean`` — the paper's rule, no gradient into the centres: after each step
  ``c_j ← c_j − α·Σ_{i: y_i=j}(c_j − f̂_i) / (1 + n_j)`` (call :meth:`CenterLoss.update_centers`).

Centres are replicated on every process; in multi-process training the trainer all-reduces their gradient
(``gradient``) or the per-class sums (``mean``: :meth:`update_centers` takes already-reduced statistics).
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
        """(per-class sum of ``c_j − f̂_i`` over the batch, per-class count): all-reduce these across ranks."""
        with paddle.no_grad():
            unit = F.normalize(embeddings.detach(), axis=1)
            labels = labels.reshape([-1]).astype("int64")
            diffs = paddle.gather(self.centers, labels, axis=0) - unit
            onehot = F.one_hot(labels, self.num_classes).astype(unit.dtype)   # N×C
            return paddle.matmul(onehot, diffs, transpose_x=True), onehot.sum(axis=0)

    def update_centers(self, diff_sums: paddle.Tensor, counts: paddle.Tensor) -> None:
        """The paper's running-mean step from (possibly all-reduced) :meth:`class_statistics`."""
        with paddle.no_grad():
            step = self.alpha * diff_sums / (1.0 + counts.unsqueeze(1))
            self.centers.set_value(self.centers - step)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, embedding_size={self.embedding_size}, update={self.update}"
