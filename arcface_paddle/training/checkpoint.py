"""Recognition checkpoints: PartialFC class centres and their optimizer state re-split for another world size.

The files and folders themselves are :mod:`arcface_paddle.core.checkpoint`'s; the backbone comes back as a
layer through :func:`arcface_paddle.backbones.loading.load_backbone`.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, Optional

import numpy as np

from arcface_paddle.core.checkpoint import (
    class_centers_file,
    load_rank_optimizer_state,
    load_state,
    optimizer_file,
    read_meta,
)
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.losses.distributed import shard_range


def shard_bounds(num_classes: int, rank: int, world_size: int) -> tuple:
    """Classes ``[start, stop)`` of ``rank`` — the PartialFC split (losses.distributed.shard_range)."""
    start, count = shard_range(num_classes, rank, world_size)
    return start, start + count


def load_class_centers(folder: str, rank: int, world_size: int, *,
                       split: Callable[[int, int, int], tuple] = shard_bounds) -> Dict[str, np.ndarray]:
    """This rank's class-centre state for ``world_size`` processes, from a checkpoint of any world size.

    Every saved shard is concatenated along the class axis (the axis whose length differs between ranks or
    equals the shard's class count) and re-sliced with ``split`` — so a run saved on 4 processes resumes on 2.
    """
    meta = read_meta(folder)
    saved_world = int(meta.get("world_size", 1))
    num_classes = int(meta["num_classes"])
    shards = [load_state(os.path.join(folder, class_centers_file(r))) for r in range(saved_world)]
    if saved_world == world_size:
        return shards[rank]
    result = {}
    for name in shards[0]:
        parts = [np.asarray(shard[name]) for shard in shards]
        axis = _class_axis(parts, num_classes, saved_world, split, name, folder)
        full = np.concatenate(parts, axis=axis)
        start, stop = split(num_classes, rank, world_size)
        result[name] = np.take(full, np.arange(start, stop), axis=axis)
    return result


def _class_axis(parts, num_classes, saved_world, split, name, folder) -> int:
    expected = [split(num_classes, r, saved_world) for r in range(saved_world)]
    counts = [stop - start for start, stop in expected]
    for axis in range(parts[0].ndim):
        if [part.shape[axis] for part in parts] == counts:
            return axis
    raise ToolkitError(f"{folder}: class-centre shards of {name!r} do not split {num_classes} classes "
                       f"over {saved_world} ranks as expected; corrupt checkpoint?")


def load_optimizer_state(folder: str, rank: int, world_size: int, *, sharded: tuple = (),
                         split: Callable[[int, int, int], tuple] = shard_bounds) -> Optional[dict]:
    """This rank's optimizer state (structured names) for ``world_size`` processes; None if not saved.

    Accumulators of replicated parameters are identical on every rank and come from rank 0's file.
    Accumulators of the class-centre parameters (names starting with a prefix in ``sharded``, e.g.
    ``"head.weight"``) are concatenated over the saved ranks and re-sliced, like the centres themselves.
    """
    meta = read_meta(folder)
    saved_world = int(meta.get("world_size", 1))
    paths = [os.path.join(folder, optimizer_file(r)) for r in range(saved_world)]
    if not all(os.path.isfile(path) for path in paths):
        return None
    if saved_world == world_size:
        return load_rank_optimizer_state(folder, rank)
    states = [load_state(path) for path in paths]
    num_classes = int(meta["num_classes"])
    result = dict(states[0])
    for key, value in states[0].items():
        if not key.startswith(tuple(prefix + "_" for prefix in sharded)) or np.ndim(value) != 2:
            continue
        parts = [np.asarray(state[key]) for state in states]
        axis = _class_axis(parts, num_classes, saved_world, split, key, folder)
        start, stop = split(num_classes, rank, world_size)
        result[key] = np.take(np.concatenate(parts, axis=axis), np.arange(start, stop), axis=axis)
    return result
