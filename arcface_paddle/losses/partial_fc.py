"""PartialFC (An et al., 2021): model-parallel margin softmax over sharded, sampled class centres.

Each rank holds a contiguous shard of the class centres (:func:`shard_range`).  A step:

1. gather embeddings (with gradient) and labels from every rank — :mod:`.distributed`;
2. keep every positive class of the shard plus each negative class with probability ``p``, chosen so that
   ``sample_ratio`` of all classes are sampled on average (:func:`sample_classes`).  A class's draw depends
   only on (sampling key, class) — the trainer's key is (seed, step) — so the sampled classes are the same
   whatever the number of processes: N processes train exactly like one, sampled or not, and a run resumed
   on another number of processes samples what it would have;
3. cosine of L2-normalised embeddings and sampled centres, margin on the target (``margin_loss``);
4. softmax cross entropy across ranks: the row max and the exp-sum are all-reduced, so the loss — the mean
   over the *global* batch — is identical on every rank.

Only sampled centres receive gradient (the unsampled rows' gradient is exactly zero); with
``sparse_update=True`` only they are updated at all (:meth:`PartialFC.step_centers`, no dense gradient).

Gradient scale: each rank's embedding gradient equals the single-process gradient for its rows, so the
backbone gradients must be *summed* over ranks to match a single-process run with the global batch
(:func:`.distributed.sum_gradients`; ``paddle.DataParallel`` averages, i.e. divides by the world size).

With one process (``paddle.distributed`` not initialised) nothing is communicated; with
``sample_ratio=1.0`` it equals a plain full softmax with the same margin.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import paddle
import paddle.nn as nn

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.losses.distributed import (
    AllReduceSum,
    all_gather_rows,
    all_reduce_max,
    distributed_env,
    gather_row_counts,
    reshard_rows,
    shard_range,
)
from arcface_paddle.losses.margin import CombinedMarginLoss, build_margin_loss

INIT_BLOCK = 4096  # classes per independently seeded init block (makes the init independent of world size)
FILL_ROWS = 131072  # centre rows initialised per step


def init_centers(start: int, count: int, embedding_size: int, std: float = 0.01, seed: int = 0) -> np.ndarray:
    """Rows ``start..start+count`` of a N(0, std²) centre matrix whose values depend only on (seed, class)."""
    out = np.empty((count, embedding_size), dtype=np.float32)
    first_block, last_block = start // INIT_BLOCK, (start + count - 1) // INIT_BLOCK if count else -1
    for block in range(first_block, last_block + 1):
        values = np.random.default_rng((seed, block)).standard_normal((INIT_BLOCK, embedding_size), np.float32)
        lo, hi = max(start, block * INIT_BLOCK), min(start + count, (block + 1) * INIT_BLOCK)
        out[lo - start:hi - start] = values[lo - block * INIT_BLOCK:hi - block * INIT_BLOCK] * std
    return out


def l2_normalize(rows: paddle.Tensor, eps: float = 1e-12) -> paddle.Tensor:
    """Rows scaled to unit length; ~2× faster backward on CPU than ``F.normalize`` (whose p_norm grad is slow)."""
    return rows * paddle.rsqrt((rows * rows).sum(axis=1, keepdim=True) + eps)


def class_draws(key: Sequence[int], start: int, count: int) -> np.ndarray:
    """Uniform [0, 1) draws for classes ``start..start+count-1`` that depend only on (``key``, class): every
    split of the classes over ranks draws the same number for a class."""
    out = np.empty(count, dtype=np.float64)
    first_block, last_block = start // INIT_BLOCK, (start + count - 1) // INIT_BLOCK if count else -1
    for block in range(first_block, last_block + 1):
        values = np.random.default_rng([*map(int, key), block]).random(INIT_BLOCK)
        lo, hi = max(start, block * INIT_BLOCK), min(start + count, (block + 1) * INIT_BLOCK)
        out[lo - start:hi - start] = values[lo - block * INIT_BLOCK:hi - block * INIT_BLOCK]
    return out


def negative_keep_rate(num_classes: int, num_sample: int, num_positive: int) -> float:
    """Probability of keeping a negative class so that ``num_sample`` classes are sampled on average (every
    positive is always kept)."""
    negatives = num_classes - num_positive
    if negatives <= 0 or num_sample <= num_positive:
        return 0.0
    return min(1.0, (num_sample - num_positive) / negatives)


def sample_classes(local_labels: paddle.Tensor, draws: np.ndarray, keep_rate: float):
    """Sorted centre indices = every positive (label ≥ 0) plus each negative whose draw is below ``keep_rate``.

    Returns (index, remapped labels: position in ``index``, −1 stays −1, empty).  ``empty``: nothing of this
    shard was sampled; ``index`` then holds one placeholder row whose logit the caller masks out, so this
    rank adds nothing to the softmax (and the centre a gradient below 1e-30)."""
    num_local = len(draws)
    in_shard = local_labels >= 0
    positive = paddle.zeros([num_local], dtype="bool")
    positives = paddle.masked_select(local_labels, in_shard)
    if positives.shape[0] > 0:
        positive = paddle.scatter(positive.astype("int32"), positives,
                                  paddle.ones_like(positives, dtype="int32")).astype("bool")
    keep = paddle.logical_or(positive, paddle.to_tensor(draws < keep_rate))
    index = paddle.nonzero(keep).reshape([-1])
    empty = index.shape[0] == 0
    if empty:
        index = paddle.zeros([1], dtype="int64")
    count = index.shape[0]
    remap = paddle.scatter(paddle.full([num_local], -1, dtype="int64"), index, paddle.arange(count, dtype="int64"))
    remapped = paddle.where(in_shard, paddle.gather(remap, paddle.clip(local_labels, min=0)), local_labels)
    return index, remapped, empty


class PartialFC(nn.Layer):
    """``PartialFC(embedding_size, num_classes, sample_ratio=1.0, margin_loss=None)``; ``forward(embeddings N×D,
    labels N) -> scalar loss``.  ``margin_loss``: a CombinedMarginLoss, a preset name or (m1, m2, m3) (default
    ArcFace, s=64).  ``state_dict()`` holds this rank's centre shard as ``weight`` (num_local × D).

    ``sparse_update=True``: the centres leave your optimizer (``weight`` gets no gradient) and
    :meth:`step_centers` applies momentum SGD to the sampled rows only — unsampled centres and their
    momentum stay exactly as they are, and no dense num_local × D gradient is ever made (the cost of a
    step then scales with the sampled centres, not all of them).  ``state_dict()`` then also holds
    ``momentum``.
    """

    def __init__(self, embedding_size: int, num_classes: int, sample_ratio: float = 1.0,
                 margin_loss: CombinedMarginLoss | str | Sequence[float] | None = None, init_std: float = 0.01,
                 init_seed: int = 0, check_labels: bool = True, sparse_update: bool = False):
        super().__init__()
        if num_classes < 1 or embedding_size < 1:
            raise ToolkitError("PartialFC: need num_classes >= 1 and embedding_size >= 1, "
                               f"got {num_classes}, {embedding_size}")
        if not 0.0 < sample_ratio <= 1.0:
            raise ToolkitError(f"PartialFC: sample_ratio must be in (0, 1], got {sample_ratio}")
        self.rank, self.world_size = distributed_env()
        if num_classes < self.world_size:
            raise ToolkitError(f"PartialFC: {num_classes} classes cannot be split over {self.world_size} ranks")
        self.embedding_size, self.num_classes, self.sample_ratio = embedding_size, num_classes, float(sample_ratio)
        self.class_start, self.num_local = shard_range(num_classes, self.rank, self.world_size)
        # Classes sampled per step on average over all ranks (this rank's share is about sample_ratio × num_local).
        self.num_sample = num_classes if sample_ratio >= 1.0 else max(1, int(sample_ratio * num_classes))
        self.sampling_key: Sequence[int] | None = None   # the trainer sets (seed, step); None → paddle's RNG
        self.margin_loss = build_margin_loss(margin_loss if margin_loss is not None else "arcface")
        self.check_labels = check_labels
        # Filled block by block: the Assign initializer would route millions of values through Python lists,
        # and one full numpy copy would double the peak memory at a million classes.
        self.weight = self.create_parameter([self.num_local, embedding_size], dtype="float32",
                                            default_initializer=nn.initializer.Constant(0.0))
        with paddle.no_grad():
            for lo in range(0, self.num_local, FILL_ROWS):
                hi = min(self.num_local, lo + FILL_ROWS)
                self.weight[lo:hi] = paddle.to_tensor(
                    init_centers(self.class_start + lo, hi - lo, embedding_size, init_std, init_seed))
        self.sampled_index: paddle.Tensor | None = None  # centre rows used by the last forward (None: all)
        self.sparse_update = sparse_update
        self._sparse_rows = None  # (index, leaf sub-matrix) of the last training forward, for step_centers
        if sparse_update:
            self.weight.stop_gradient = True
            self.register_buffer("momentum", paddle.zeros([self.num_local, embedding_size], dtype="float32"))

    def forward(self, embeddings: paddle.Tensor, labels: paddle.Tensor) -> paddle.Tensor:
        embeddings = embeddings.astype("float32")
        labels = labels.reshape([-1]).astype("int64")
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_size or embeddings.shape[0] != labels.shape[0]:
            raise ToolkitError(f"PartialFC: expected embeddings N×{self.embedding_size} and N labels, "
                               f"got {list(embeddings.shape)} and {list(labels.shape)}")
        counts = gather_row_counts(embeddings.shape[0]) if self.world_size > 1 else None
        embeddings = all_gather_rows(embeddings, counts)
        labels = all_gather_rows(labels, counts)
        if self.check_labels:
            self._check_labels(labels)
        local = labels - self.class_start
        local = paddle.where((local >= 0) & (local < self.num_local), local, paddle.full_like(local, -1))
        weight = self.weight
        self.sampled_index, empty = None, False
        if self.num_sample < self.num_classes and self.training:
            key = self.sampling_key
            if key is None:
                key = (int(paddle.randint(0, 2 ** 31 - 1, [1]).item()),)
            rate = negative_keep_rate(self.num_classes, self.num_sample, int(paddle.unique(labels).shape[0]))
            self.sampled_index, local, empty = sample_classes(
                local, class_draws(key, self.class_start, self.num_local), rate)
            weight = paddle.gather(self.weight, self.sampled_index)
        if self.sparse_update and self.training:
            index = self.sampled_index if self.sampled_index is not None else paddle.arange(self.num_local)
            weight = weight.detach().clone() if self.sampled_index is None else weight.detach()
            weight.stop_gradient = False  # a leaf: its .grad is the sampled rows' gradient
            self._sparse_rows = (index, weight)
        cosine = paddle.matmul(l2_normalize(embeddings), l2_normalize(weight), transpose_y=True)
        logits = self.margin_loss(paddle.clip(cosine, -1.0, 1.0), local)
        if empty:   # the placeholder column: exp(-1e30 - max) is exactly 0, so the softmax ignores it
            logits = logits - 1e30
        return parallel_softmax_cross_entropy(logits, local)

    def _check_labels(self, labels: paddle.Tensor) -> None:
        low, high = int(labels.min().item()), int(labels.max().item())
        if low < 0 or high >= self.num_classes:
            raise ToolkitError(f"PartialFC: label {low if low < 0 else high} outside [0, {self.num_classes})")

    def sparse_gradient(self) -> paddle.Tensor:
        """The gradient of the centre rows used by the last training forward (``sparse_update=True``), after
        ``backward`` — the tensor :meth:`step_centers` applies, so unscaling it in place (AMP) is seen there."""
        if self._sparse_rows is None or self._sparse_rows[1].grad is None:
            raise ToolkitError("PartialFC: no sparse gradient (needs sparse_update=True, a training forward and "
                               "backward)")
        return self._sparse_rows[1].grad

    @paddle.no_grad()
    def step_centers(self, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4) -> None:
        """Momentum SGD on the centres used by the last forward (``sparse_update=True``), after ``backward``:
        ``v = momentum·v + (g + weight_decay·w); w −= lr·v`` — Paddle's Momentum rule, on those rows only."""
        if not self.sparse_update:
            raise ToolkitError("PartialFC: step_centers needs sparse_update=True "
                               "(without it, your optimizer updates the centres)")
        if self._sparse_rows is None or self._sparse_rows[1].grad is None:
            raise ToolkitError("PartialFC: step_centers called without a training forward and backward before it")
        index, rows = self._sparse_rows
        velocity = momentum * paddle.gather(self.momentum, index) + rows.grad + weight_decay * rows
        paddle.scatter_(self.momentum, index, velocity)
        paddle.scatter_(self.weight, index, rows - lr * velocity)
        self._sparse_rows = None

    def load_center_shards(self, shards: Sequence[np.ndarray], momentum_shards: Sequence[np.ndarray] | None = None
                           ) -> None:
        """Set this rank's centres (and, with ``sparse_update``, their momentum) from the shards of a run with any
        world size (in rank order) — resuming on a different number of processes re-splits the classes."""
        self.weight.set_value(self._local_rows(shards, "PartialFC: checkpoint centres"))
        if momentum_shards is not None:
            if not self.sparse_update:
                raise ToolkitError("PartialFC: momentum shards given but sparse_update is off")
            self.momentum.set_value(self._local_rows(momentum_shards, "PartialFC: checkpoint centre momentum"))

    def _local_rows(self, shards: Sequence[np.ndarray], what: str) -> np.ndarray:
        rows = reshard_rows(shards, self.rank, self.world_size, self.num_classes, what=what)
        if rows.ndim != 2 or rows.shape[1] != self.embedding_size:
            raise ToolkitError(f"{what}: rows of {list(rows.shape[1:])} values, the head's are {self.embedding_size}")
        return rows.astype(np.float32, copy=False)

    def extra_repr(self) -> str:
        return (f"embedding_size={self.embedding_size}, num_classes={self.num_classes}, "
                f"shard=[{self.class_start}, {self.class_start + self.num_local}), sample_ratio={self.sample_ratio}, "
                f"rank={self.rank}/{self.world_size}")


def parallel_softmax_cross_entropy(logits: paddle.Tensor, local_labels: paddle.Tensor) -> paddle.Tensor:
    """Mean softmax cross entropy when each rank holds some columns of the logits (−1: target elsewhere)."""
    shifted = logits - all_reduce_max(logits.max(axis=1, keepdim=True))
    sum_exp = AllReduceSum.apply(paddle.exp(shifted).sum(axis=1))
    in_shard = (local_labels >= 0).astype(logits.dtype)
    picked = paddle.take_along_axis(shifted, paddle.clip(local_labels, min=0).unsqueeze(1), axis=1).squeeze(1)
    target = AllReduceSum.apply(picked * in_shard)
    return (paddle.log(sum_exp) - target).mean()
