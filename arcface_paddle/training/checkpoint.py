"""Recognition checkpoints: the PartialFC class-centre shards and their optimizer state, for any world size.

The files and folders themselves are :mod:`arcface_paddle.core.checkpoint`'s; re-splitting rows for another
process count is :func:`arcface_paddle.losses.distributed.reshard_rows` (its one home); the backbone comes back
as a layer through :func:`arcface_paddle.backbones.loading.load_backbone`.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional

import numpy as np

from arcface_paddle.core.checkpoint import (
    class_centers_file,
    load_rank_optimizer_state,
    load_state,
    optimizer_file,
    read_meta,
)
from arcface_paddle.losses.distributed import reshard_rows


def load_center_shards(folder: str) -> List[Dict[str, np.ndarray]]:
    """Every saved rank's class-centre state (``weight``; ``momentum`` with ``sparse_update``), in rank order."""
    saved_world = int(read_meta(folder).get("world_size", 1))
    return [load_state(os.path.join(folder, class_centers_file(r))) for r in range(saved_world)]


def load_optimizer_state(folder: str, rank: int, world_size: int, *, sharded: tuple = ()) -> Optional[dict]:
    """This rank's optimizer state (structured names) for ``world_size`` processes; None if not saved.

    Accumulators of replicated parameters are identical on every rank and come from rank 0's file.
    Accumulators of the class-centre parameters (names starting with a prefix in ``sharded``, e.g.
    ``"head.weight"``) are re-split over the ranks like the centres themselves (:func:`reshard_rows`).
    """
    meta = read_meta(folder)
    saved_world = int(meta.get("world_size", 1))
    paths = [os.path.join(folder, optimizer_file(r)) for r in range(saved_world)]
    if not all(os.path.isfile(path) for path in paths):
        return None
    if saved_world == world_size:
        return load_rank_optimizer_state(folder, rank)
    states = [load_state(path) for path in paths]
    result = dict(states[0])
    for key, value in states[0].items():
        if key.startswith(tuple(prefix + "_" for prefix in sharded)) and np.ndim(value) == 2:
            result[key] = reshard_rows([state[key] for state in states], rank, world_size, int(meta["num_classes"]),
                                       what=f"{folder}: optimizer state {key}")
    return result
