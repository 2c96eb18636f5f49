"""Collectives with correct gradients, and class-shard arithmetic, for model-parallel PartialFC.

``paddle.distributed.all_gather`` carries no gradient and gloo needs equal shapes on every rank, so:

* :class:`AllGather` — concatenation of every rank's tensor; backward sums the incoming gradient over ranks
  (each rank's loss only sees its own class shard) and returns this rank's slice;
* :func:`all_gather_rows` — the same for tensors whose first dimension differs between ranks (pads to the
  largest, gathers, drops the padding);
* :class:`AllReduceSum` — sum over ranks whose backward is the identity, for quantities every rank then
  turns into the *same* loss (softmax denominators, target logits): each rank's local part gets d(loss)/d(sum);
* :class:`AllReduceSumOfParts` — sum over ranks whose backward sums too, for quantities each rank turns into
  its own part of the loss (synchronised batch-norm statistics);
* :func:`sum_gradients` — sums backbone gradients over ranks (what PartialFC's gradient scale needs);
  :func:`sum_gradient_rows` — the same for the few rows a batch touches of a large replicated table;
* :func:`shard_range` / :func:`reshard_rows` — the class split, and the one place per-class arrays saved by
  a run of one world size (centres, their momentum or Adam moments) are re-split for another.

Every function works without ``paddle.distributed`` initialised (world size 1: no communication).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
import paddle
import paddle.distributed as dist
from paddle.autograd import PyLayer

from arcface_paddle.core.errors import ToolkitError


def distributed_env() -> Tuple[int, int]:
    """(rank, world_size); (0, 1) when paddle.distributed is not initialised."""
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard_range(num_classes: int, rank: int, world_size: int) -> Tuple[int, int]:
    """(first class, class count) of ``rank``'s contiguous shard; the first ``num_classes % world_size`` ranks get
    one class more, so shard sizes differ by at most one."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world size {world_size}")
    base, extra = divmod(num_classes, world_size)
    start = rank * base + min(rank, extra)
    return start, base + (1 if rank < extra else 0)


def reshard_rows(shards: Sequence[np.ndarray], rank: int, world_size: int, num_classes: int,
                 what: str = "class-centre shards") -> np.ndarray:
    """``rank``'s rows (of ``world_size``) of a per-class array saved as contiguous row shards, in rank order, by a
    run of any world size — the centres and their optimizer state when a run resumes on another process count."""
    arrays = [np.asarray(shard) for shard in shards]
    if not arrays or any(a.ndim < 1 or a.shape[1:] != arrays[0].shape[1:] for a in arrays) \
            or sum(a.shape[0] for a in arrays) != num_classes:
        raise ToolkitError(f"{what} {[list(a.shape) for a in arrays]} do not split {num_classes} classes into rows; "
                           f"corrupt checkpoint, or another dataset?")
    start, count = shard_range(num_classes, rank, world_size)
    full = np.concatenate(arrays, axis=0) if len(arrays) > 1 else arrays[0]
    return full[start:start + count]


def _gather_equal(tensor: paddle.Tensor) -> List[paddle.Tensor]:
    pieces: List[paddle.Tensor] = []
    dist.all_gather(pieces, tensor)
    return pieces


class AllGather(PyLayer):
    """Concatenate equal-shaped tensors from all ranks along axis 0; gradient summed over ranks, sliced back."""

    @staticmethod
    def forward(ctx, tensor):
        rank, world_size = distributed_env()
        ctx.rank, ctx.rows = rank, tensor.shape[0]
        if world_size == 1:
            return tensor.clone()
        return paddle.concat(_gather_equal(tensor.contiguous()), axis=0)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        if dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


def all_reduce_sum(tensor: paddle.Tensor) -> paddle.Tensor:
    """A new tensor: the element-wise sum of ``tensor`` over ranks (a copy with one process)."""
    out = tensor.clone()
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


class AllReduceSum(PyLayer):
    """Sum over ranks; backward passes the gradient through unchanged (every rank computes the same loss)."""

    @staticmethod
    def forward(ctx, tensor):
        return all_reduce_sum(tensor)

    @staticmethod
    def backward(ctx, grad):
        return grad


class AllReduceSumOfParts(PyLayer):
    """Sum over ranks where each rank holds a *part* of the global loss (batch-norm statistics): the gradient is
    summed over ranks too."""

    @staticmethod
    def forward(ctx, tensor):
        return all_reduce_sum(tensor)

    @staticmethod
    def backward(ctx, grad):
        return all_reduce_sum(grad)


def all_reduce_max(tensor: paddle.Tensor) -> paddle.Tensor:
    """Element-wise max over ranks (no gradient: used only as a softmax shift)."""
    out = tensor.detach().clone()
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(out, op=dist.ReduceOp.MAX)
    return out


def gather_row_counts(rows: int) -> List[int]:
    """Every rank's first-dimension size (one small all_gather)."""
    rank, world_size = distributed_env()
    if world_size == 1:
        return [rows]
    return [int(t.item()) for t in _gather_equal(paddle.to_tensor([rows], dtype="int64"))]


def _pad_rows(tensor: paddle.Tensor, rows: int) -> paddle.Tensor:
    missing = rows - tensor.shape[0]
    if missing == 0:
        return tensor
    padding = paddle.zeros([missing] + list(tensor.shape[1:]), dtype=tensor.dtype)
    return paddle.concat([tensor, padding], axis=0)


def _drop_padding(gathered: paddle.Tensor, counts: List[int]) -> paddle.Tensor:
    largest = max(counts)
    if all(c == largest for c in counts):
        return gathered
    return paddle.concat([gathered[r * largest:r * largest + c] for r, c in enumerate(counts) if c > 0], axis=0)


def all_gather_rows(tensor: paddle.Tensor, counts: List[int] | None = None) -> paddle.Tensor:
    """Rows of every rank in rank order (first dimensions may differ); differentiable when ``tensor`` is."""
    counts = counts if counts is not None else gather_row_counts(tensor.shape[0])
    if len(counts) == 1:
        return tensor
    padded = _pad_rows(tensor, max(counts))
    gathered = AllGather.apply(padded) if not tensor.stop_gradient else paddle.concat(_gather_equal(padded), 0)
    return _drop_padding(gathered, counts)


def sum_gradients(parameters) -> None:
    """All-reduce (sum) the gradients of ``parameters`` over ranks, in one flat buffer.

    PartialFC gives each rank the full single-process gradient for its own embeddings, so summing the
    backbone gradients over ranks reproduces a single-process step on the global batch
    (``paddle.DataParallel`` would average, i.e. divide by the world size).  No-op with one process.
    """
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return
    with_grad = [p for p in parameters if p.grad is not None]
    if not with_grad:
        return
    flat = paddle.concat([p.grad.reshape([-1]).astype("float32") for p in with_grad])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for p in with_grad:
        size = int(p.grad.size)
        p.grad.set_value(flat[offset:offset + size].reshape(p.grad.shape).astype(p.grad.dtype))
        offset += size


def sum_gradient_rows(parameter, rows: paddle.Tensor) -> None:
    """All-reduce (sum) only ``rows`` of ``parameter``'s gradient, in place — for a replicated table whose gradient
    is zero outside the rows of the classes in the (gathered, so identical) batch, e.g. center-loss centres: the
    traffic is rows × D instead of the whole table.  ``rows`` must be the same on every rank.  No-op with one
    process."""
    if not (dist.is_initialized() and dist.get_world_size() > 1) or parameter.grad is None:
        return
    with paddle.no_grad():
        part = paddle.gather(parameter.grad, rows, axis=0)
        dist.all_reduce(part, op=dist.ReduceOp.SUM)
        paddle.scatter_(parameter.grad, rows, part)
