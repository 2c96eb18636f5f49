"""Deterministic distributed batch samplers whose order depends only on (seed, epoch).

Both samplers build the *global* batch first and give rank ``r`` its contiguous slice, so a run on one
process with batch 8 sees exactly the images a run on two processes with batch 4 sees, step by step; and
``set_epoch(epoch, start_batch=k)`` skips the ``k`` batches a resumed run already consumed, without reading
them.

* :class:`GlobalBatchSampler` — every sample once per epoch in a seeded permutation (softmax losses).
* :class:`IdentityBatchSampler` — batches of P identities × K images each (triplet mining needs
  positives in the batch); every identity with at least two images appears once per epoch.
"""
from __future__ import annotations

from typing import Iterator, List, Sequence

import numpy as np
import paddle

from arcface_paddle.core.errors import ToolkitError

_SHUFFLE_STREAM = 0x5EED
_PK_STREAM = 0x9C


def _epoch_rng(seed: int, epoch: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(epoch), stream])


class GlobalBatchSampler(paddle.io.BatchSampler):
    """Seeded shuffle, drop-last global batches of ``batch_size × world_size``, split across ranks."""

    def __init__(self, num_samples: int, batch_size: int, *, rank: int = 0, world_size: int = 1,
                 seed: int = 0, shuffle: bool = True):
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.rank, self.world_size = int(rank), int(world_size)
        self.global_batch = self.batch_size * self.world_size
        self.seed, self.shuffle = int(seed), shuffle
        self.epoch, self.start_batch = 0, 0
        if self.num_samples < self.global_batch:
            raise ToolkitError(f"dataset has {self.num_samples} images, fewer than one global batch of "
                               f"{self.global_batch} (batch_size {self.batch_size} × {self.world_size} processes)")

    @property
    def batches_per_epoch(self) -> int:
        return self.num_samples // self.global_batch

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def global_order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.num_samples)
        return _epoch_rng(self.seed, epoch, _SHUFFLE_STREAM).permutation(self.num_samples)

    def __iter__(self) -> Iterator[List[int]]:
        order = self.global_order(self.epoch)
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        for batch in range(self.start_batch, self.batches_per_epoch):
            chunk = order[batch * self.global_batch:(batch + 1) * self.global_batch]
            yield chunk[lo:hi].tolist()

    def __len__(self) -> int:
        return max(self.batches_per_epoch - self.start_batch, 0)


class IdentityBatchSampler(paddle.io.BatchSampler):
    """P identities × K images per global batch (``P·K = batch_size × world_size``), split across ranks.

    Each epoch shuffles the identities (those with >= 2 images) and, per identity, its images; an identity
    with fewer than K images repeats some (sampling with replacement only where needed).  Each rank gets
    whole identities (``P / world_size`` of them), so its local batch also holds positives.
    """

    def __init__(self, labels: Sequence[int], batch_size: int, images_per_identity: int, *, rank: int = 0,
                 world_size: int = 1, seed: int = 0):
        labels = np.asarray(labels, dtype=np.int64)
        self.batch_size, self.k = int(batch_size), int(images_per_identity)
        self.rank, self.world_size, self.seed = int(rank), int(world_size), int(seed)
        if self.k < 2 or self.batch_size % self.k:
            raise ToolkitError(f"triplet sampling: batch_size {self.batch_size} must be a multiple of "
                               f"triplet.images_per_identity {self.k} (>= 2)")
        self.identities_per_rank = self.batch_size // self.k
        self.identities_per_batch = self.identities_per_rank * self.world_size
        order = np.argsort(labels, kind="stable")
        classes, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
        self.members = {int(c): order[s:s + n] for c, s, n in zip(classes, starts, counts) if n >= 2}
        self.identities = np.array(sorted(self.members), dtype=np.int64)
        if len(self.identities) < max(self.identities_per_batch, 2):
            raise ToolkitError(f"triplet sampling: {len(self.identities)} identities with >= 2 images, need "
                               f"{self.identities_per_batch} per global batch (lower batch_size)")
        self.epoch, self.start_batch = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        return len(self.identities) // self.identities_per_batch

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def _images_of(self, identity: int, rng: np.random.Generator) -> np.ndarray:
        members = self.members[identity]
        if len(members) >= self.k:
            return rng.permutation(members)[:self.k]
        return np.concatenate([rng.permutation(members), rng.choice(members, self.k - len(members))])

    def __iter__(self) -> Iterator[List[int]]:
        rng = _epoch_rng(self.seed, self.epoch, _PK_STREAM)
        identity_order = rng.permutation(self.identities)
        # One draw per identity in a fixed order, so skipping batches on resume changes nothing else.
        picks = {int(identity): self._images_of(int(identity), rng) for identity in identity_order}
        per_rank = self.identities_per_rank
        for batch in range(self.start_batch, self.batches_per_epoch):
            chosen = identity_order[batch * self.identities_per_batch:(batch + 1) * self.identities_per_batch]
            mine = chosen[self.rank * per_rank:(self.rank + 1) * per_rank]
            yield np.concatenate([picks[int(identity)] for identity in mine]).tolist()

    def __len__(self) -> int:
        return max(self.batches_per_epoch - self.start_batch, 0)
