"""Training checkpoints of any network: one folder per save, written atomically, the last K kept.

Layout (``OUTPUT`` is the training ``output`` folder)::

    OUTPUT/checkpoints/step_000200/
        backbone.pdparams            backbone state dict (paddle.save format)
        class_centers_rank{r}.pdparams   rank r's slice of the PartialFC class centres
        optimizer_rank{r}.pdopt      rank r's optimizer state, keyed by structured parameter names
        meta.json                    {"network", "backbone_kwargs", "embedding_size", "epoch", "step",
                                      "world_size", "num_classes", ... data position, seed}
    OUTPUT/latest -> checkpoints/step_000200   (symlink to the newest complete checkpoint)

A checkpoint folder is first filled under a hidden temporary name and renamed into place only when every
rank has written its files and ``meta.json`` is complete, so a run killed mid-save never leaves a folder
that looks complete.  Readers use a restricted unpickler (plain data and numpy arrays only): a ``.pdparams``
handed to us by a user cannot run code.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
from typing import Callable, Dict, Optional

import numpy as np

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.restricted_pickle import load_pickle_file
from arcface_paddle.core.safe_io import atomic_save_bytes, atomic_write, read_text_file

CHECKPOINTS_DIR = "checkpoints"
LATEST_NAME = "latest"
BACKBONE_FILE = "backbone.pdparams"
META_FILE = "meta.json"
_STEP_DIR = re.compile(r"^step_(\d+)$")
_STRUCTURE_KEY = "StructuredToParameterName@@"
# A shared filesystem (NFS) may show one node's new files to another only after its attribute cache expires:
# how long rank 0 waits for the other ranks' files before it calls them missing.
SHARED_FS_WAIT_S = 60.0


def class_centers_file(rank: int) -> str:
    return f"class_centers_rank{rank}.pdparams"


def optimizer_file(rank: int) -> str:
    return f"optimizer_rank{rank}.pdopt"


def step_dir_name(step: int) -> str:
    return f"step_{step:06d}"


# ----------------------------------------------------------------------------------------- state files
def _to_numpy_tree(value):
    """Tensors → numpy so the pickle holds only plain data and arrays."""
    if hasattr(value, "numpy") and callable(value.numpy):
        return value.numpy()
    if isinstance(value, dict):
        return {key: _to_numpy_tree(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_numpy_tree(item) for item in value)
    return value


def save_state(path: str, state: dict) -> None:
    """Write a state dict (tensors or arrays) in paddle.save's format, atomically."""
    import paddle  # heavy (paddle): imported on first use

    buffer = io.BytesIO()
    paddle.save(_to_numpy_tree(state), buffer, protocol=4)
    atomic_save_bytes(path, buffer.getvalue())


def load_state(path: str) -> Dict[str, object]:
    """Read a ``.pdparams``/``.pdopt`` file as a dict of numpy arrays, refusing anything but plain data."""
    state = load_pickle_file(path, "checkpoint file", allow_numpy=True)
    if not isinstance(state, dict):
        raise ToolkitError(f"{path}: expected a state dict, found {type(state).__name__}")
    state.pop(_STRUCTURE_KEY, None)
    return state


# ------------------------------------------------------------------------------------------ locating
def resolve_checkpoint(path: str) -> str:
    """Return the checkpoint folder for ``path``: a checkpoint folder, an output folder, or its ``latest``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ToolkitError(f"{path}: checkpoint not found")
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, META_FILE)):
        return os.path.realpath(path)
    if os.path.isdir(path):
        newest = latest_checkpoint(path)
        if newest is not None:
            return newest
        raise ToolkitError(f"{path}: no checkpoint here (expected {META_FILE} or {CHECKPOINTS_DIR}/step_*/)")
    raise ToolkitError(f"{path}: not a checkpoint folder")


def list_checkpoints(output_dir: str) -> list:
    """Complete checkpoint folders under ``output_dir/checkpoints``, oldest first."""
    root = os.path.join(output_dir, CHECKPOINTS_DIR)
    if not os.path.isdir(root):
        return []
    found = []
    for name in os.listdir(root):
        match = _STEP_DIR.match(name)
        if match and os.path.isfile(os.path.join(root, name, META_FILE)):
            found.append((int(match.group(1)), os.path.join(root, name)))
    return [path for _, path in sorted(found)]


def latest_checkpoint(output_dir: str) -> Optional[str]:
    """The newest complete checkpoint under ``output_dir`` (``latest`` link, else the highest step)."""
    link = os.path.join(output_dir, LATEST_NAME)
    if os.path.isdir(link) and os.path.isfile(os.path.join(link, META_FILE)):
        return os.path.realpath(link)
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def read_meta(folder: str) -> dict:
    path = os.path.join(folder, META_FILE)
    if not os.path.exists(path):
        raise ToolkitError(f"{path}: missing (not a checkpoint folder)")
    try:
        meta = json.loads(read_text_file(path, "checkpoint meta.json"))
    except json.JSONDecodeError as error:
        raise ToolkitError(f"{path}: corrupt JSON ({error})") from None
    if not isinstance(meta, dict):
        raise ToolkitError(f"{path}: expected a JSON object")
    return meta


# -------------------------------------------------------------------------------------------- saving
def save_checkpoint(output_dir: str, step: int, *, meta: dict, backbone_state: Optional[dict] = None,
                    class_centers_state: Optional[dict] = None, optimizer_state: Optional[dict] = None,
                    rank: int = 0, world_size: int = 1, keep: int = 3,
                    barrier: Optional[Callable[[], None]] = None,
                    extra_states: Optional[Dict[str, dict]] = None) -> str:
    """Save one checkpoint; every rank calls this with its own shard and optimizer state.

    Rank 0 writes ``backbone.pdparams``, ``extra_states`` (file name → state dict of replicated parts)
    and ``meta.json``, and publishes the folder; ``barrier`` (e.g.
    ``paddle.distributed.barrier``) must be given when ``world_size > 1``.  All ranks must share the filesystem
    (multi-node: a shared output folder); rank 0 refuses to publish a folder missing another rank's files.
    Returns the final folder path.
    """
    sync = barrier if (barrier is not None and world_size > 1) else (lambda: None)
    root = os.path.join(output_dir, CHECKPOINTS_DIR)
    final = os.path.join(root, step_dir_name(step))
    staging = os.path.join(root, "." + step_dir_name(step) + ".tmp")
    sync()
    if rank == 0:
        shutil.rmtree(staging, ignore_errors=True)  # leftovers of a run killed mid-save
    sync()
    os.makedirs(staging, exist_ok=True)             # every rank: no rank relies on seeing another's mkdir
    if class_centers_state is not None:
        save_state(os.path.join(staging, class_centers_file(rank)), class_centers_state)
    if optimizer_state is not None:
        save_state(os.path.join(staging, optimizer_file(rank)), optimizer_state)
    sync()
    missing = []
    if rank == 0:
        expected = [name(r) for r in range(world_size) for name, state in
                    ((class_centers_file, class_centers_state), (optimizer_file, optimizer_state)) if state is not None]
        missing = wait_for_files(staging, expected, SHARED_FS_WAIT_S if world_size > 1 else 0.0)
    if rank == 0 and not missing:
        if backbone_state is not None:
            save_state(os.path.join(staging, BACKBONE_FILE), backbone_state)
        for name, state in (extra_states or {}).items():
            save_state(os.path.join(staging, name), state)
        full_meta = dict(meta, step=int(step), world_size=int(world_size))
        with atomic_write(os.path.join(staging, META_FILE), "w") as handle:
            json.dump(full_meta, handle, indent=2, sort_keys=True)
        shutil.rmtree(final, ignore_errors=True)  # re-saving a step (e.g. after a resume) replaces it
        os.replace(staging, final)
        _point_latest(output_dir, final)
        prune_checkpoints(output_dir, keep)
    sync()
    if missing:     # never a half checkpoint; rank 0 stops the run (the launcher then ends the other ranks)
        raise ToolkitError(f"{final}: checkpoint not saved: rank 0 cannot see {', '.join(missing)}; every rank must "
                           f"write into the same output folder — on several nodes a shared filesystem (see "
                           f"docs/gpu.md, multi-node)")
    return final


def wait_for_files(folder: str, names, timeout: float) -> list:
    """The ``names`` still missing from ``folder`` after waiting up to ``timeout`` seconds for them to appear."""
    deadline = time.monotonic() + timeout
    while True:
        missing = [name for name in names if not os.path.isfile(os.path.join(folder, name))]
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(0.5)


def _point_latest(output_dir: str, folder: str) -> None:
    link = os.path.join(output_dir, LATEST_NAME)
    tmp_link = link + ".tmp"
    if os.path.lexists(tmp_link):
        os.unlink(tmp_link)
    os.symlink(os.path.relpath(folder, output_dir), tmp_link)
    os.replace(tmp_link, link)  # atomic switch


def prune_checkpoints(output_dir: str, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (``keep <= 0`` keeps everything)."""
    if keep <= 0:
        return
    for folder in list_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------------------------------- loading
def backbone_state_path(path: str) -> str:
    return os.path.join(resolve_checkpoint(path), BACKBONE_FILE) if os.path.isdir(path) else path


def load_weights_into(layer, state: dict, *, source: str, allow_missing: tuple = (),
                      allow_unexpected: bool = False) -> list:
    """Copy ``state`` into ``layer`` after checking names and shapes; returns the names skipped.

    ``allow_missing``: name prefixes the checkpoint may lack or disagree on in shape (e.g. a new head when
    fine-tuning); those keep the layer's own initialisation.
    """
    own = layer.state_dict()
    skipped = [name for name in own if name not in state and name.startswith(allow_missing)] if allow_missing else []
    missing = [name for name in own if name not in state and name not in skipped]
    unexpected = [name for name in state if name not in own]
    if missing:
        raise ToolkitError(f"{source}: weights missing for {len(missing)} parameter(s) of "
                           f"{type(layer).__name__} (first: {', '.join(missing[:3])}); wrong network or options?")
    if unexpected and not allow_unexpected:
        raise ToolkitError(f"{source}: {len(unexpected)} unexpected weight(s) for {type(layer).__name__} "
                           f"(first: {', '.join(unexpected[:3])}); wrong network or options?")
    converted = {}
    for name, target in own.items():
        if name in skipped:
            continue
        value = np.asarray(state[name])
        if tuple(value.shape) != tuple(target.shape):
            if allow_missing and name.startswith(allow_missing):
                skipped.append(name)
                continue
            raise ToolkitError(f"{source}: shape mismatch for {name}: checkpoint {list(value.shape)}, "
                               f"network {list(target.shape)} (different embedding_size, width or input size?)")
        converted[name] = value.astype(_numpy_dtype(target), copy=False)
    layer.set_state_dict(converted)
    return skipped


def _numpy_dtype(tensor):
    import paddle  # heavy (paddle): imported on first use

    return {paddle.float32: np.float32, paddle.float64: np.float64, paddle.float16: np.float16,
            paddle.int64: np.int64, paddle.int32: np.int32}.get(tensor.dtype, np.float32)


# ------------------------------------------------------------------------------- optimizer state
def optimizer_state_by_structure(optimizer_state: dict, named_parameters) -> dict:
    """Rename optimizer accumulators from Paddle's unique parameter names to structured names.

    Paddle keys accumulators by ``param.name`` (``linear_3.w_0_velocity_0``), which depends on how many
    layers a process built before; structured names (``backbone.fc.weight``) survive any build order.
    """
    to_structured = {param.name: name for name, param in named_parameters}
    return _rename_optimizer_keys(optimizer_state, to_structured)


def optimizer_state_from_structure(saved: dict, named_parameters) -> dict:
    """Inverse of :func:`optimizer_state_by_structure` for this process's parameters."""
    to_unique = {name: param.name for name, param in named_parameters}
    return _rename_optimizer_keys(saved, to_unique)


def _rename_optimizer_keys(state: dict, mapping: dict) -> dict:
    ordered = sorted(mapping, key=len, reverse=True)  # longest prefix wins (linear_1 vs linear_10)

    def rename(key):
        for old in ordered:
            if key == old or key.startswith(old + "_"):
                return mapping[old] + key[len(old):]
        return key

    renamed = {}
    for key, value in state.items():
        if key == "master_weights" and isinstance(value, dict):
            renamed[key] = {rename(name): item for name, item in value.items()}
        elif key in ("LR_Scheduler", _STRUCTURE_KEY):
            renamed[key] = value
        else:
            renamed[rename(key)] = value
    return renamed


def load_rank_optimizer_state(folder: str, rank: int = 0) -> Optional[dict]:
    """Rank ``rank``'s saved optimizer state (structured names) as it was written; None if not saved."""
    path = os.path.join(folder, optimizer_file(rank))
    return load_state(path) if os.path.isfile(path) else None
