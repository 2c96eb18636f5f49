"""Recognition checkpoints: the backbone back as a layer, and PartialFC state re-split for another world size.

The files and folders themselves are :mod:`arcface_paddle.core.checkpoint`'s; this module knows what a
recognition run keeps in them (``meta.json``'s network and options, per-rank class-centre shards).
"""
from __future__ import annotations

import os
from typing import Callable, Dict, Optional

import numpy as np

from arcface_paddle.backbones import get_model
from arcface_paddle.core.checkpoint import (BACKBONE_FILE, class_centers_file, load_rank_optimizer_state, load_state,
                                            load_weights_into, optimizer_file, read_meta, resolve_checkpoint)
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.losses.distributed import shard_range


def load_backbone(path: str, network: Optional[str] = None, **backbone_kwargs):
    """Build a backbone and load its weights; returns ``(layer in eval mode, meta dict)``.

    ``path`` is a checkpoint folder (its ``meta.json`` names the network and its options), an output folder
    (its newest checkpoint is used) or a bare ``.pdparams`` file (then ``network`` is required and
    ``backbone_kwargs`` give the options).  Keyword options given here override those in ``meta.json``.
    Missing, unexpected or wrongly shaped weights raise :class:`ToolkitError`.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        folder = resolve_checkpoint(path)
        meta = read_meta(folder)
        params_path = os.path.join(folder, BACKBONE_FILE)
        network = network or meta.get("network")
        kwargs = dict(meta.get("backbone_kwargs") or {})
        if "embedding_size" not in kwargs and meta.get("embedding_size") is not None:
            kwargs["embedding_size"] = meta["embedding_size"]
        kwargs.update(backbone_kwargs)
    else:
        if not os.path.isfile(path):
            raise ToolkitError(f"{path}: checkpoint not found")
        params_path = path
        meta = {}
        kwargs = dict(backbone_kwargs)
    if not network:
        raise ToolkitError(f"{path}: a bare .pdparams does not say its network; name it (--network on the "
                           f"command line, network= in Python, e.g. MobileFaceNet_128)")
    layer = get_model(network, **kwargs)
    load_weights_into(layer, load_state(params_path), source=params_path)
    layer.eval()
    meta = dict(meta, network=network, backbone_kwargs=kwargs)
    meta.setdefault("embedding_size", kwargs.get("embedding_size"))
    return layer, meta


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
