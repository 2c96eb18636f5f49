"""A run's own config: what ``--resume`` restores, what changing it takes, and the record of every start.

Files in the run's output folder::

    config.yaml            the run's resolved config — written at the first start, rewritten only when a
                           resume changes it with allow_config_change (each checkpoint's meta.json also
                           holds the config it was trained with)
    config_history.yaml    one entry per start: time, step, processes, command, resumed-from checkpoint,
                           and every changed key as {from, to}; the first entry keeps the original config

Resuming restores the checkpoint's own config (``train.py --output RUN --resume`` needs no ``-c``).  A
config that differs from it in a key that changes what is trained (anything outside
:data:`RUN_NEUTRAL_KEYS`) is refused with the list of changed keys unless the caller allows it.  A different
per-process ``batch_size`` that keeps the run's global batch (resuming on another number of processes) is
no change of the run.
"""
from __future__ import annotations

import datetime
import json
import os
import sys
from typing import Dict, List, Optional, Tuple

import yaml

from arcface_paddle.core import checkpoint as ckpt
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.safe_io import atomic_write
from arcface_paddle.core.yaml_config import dump_config, load_yaml_file

CONFIG_NAME = "config.yaml"
HISTORY_NAME = "config_history.yaml"
# Keys saying where and how often a run logs, saves and loads — not what it computes; the keys that only act
# at a run's first start; and sparse_update, which a resume may switch (it moves the centres' momentum between
# the optimizer and PartialFC: docs/gpu.md).  Changing them on resume needs no permission (it is recorded).
RUN_NEUTRAL_KEYS = ("resume", "output", "logdir", "log_every", "checkpoint_every_steps", "keep_checkpoints",
                    "data.num_workers", "validation.batch_size", "cpu_threads", "pretrained", "pretrained_skip",
                    "sparse_update")


def flatten(config: dict, prefix: str = "") -> Dict[str, object]:
    """``{"data": {"root": x}}`` → ``{"data.root": x}`` (JSON-normalised values: tuples become lists)."""
    flat = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = json.loads(json.dumps(value))
    return flat


def config_changes(run_config: dict, config: dict) -> Dict[str, Tuple[object, object]]:
    """``{dotted key: (run's value, new value)}`` for every key whose value differs."""
    old, new = flatten(run_config), flatten(config)
    return {key: (old.get(key), new.get(key)) for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key) and key != "resume"}     # resuming is not a change of the run


def run_folder_of(checkpoint: str) -> Optional[str]:
    """``RUN`` for a checkpoint folder ``RUN/checkpoints/step_N`` (None when it is not laid out so)."""
    folder = os.path.realpath(checkpoint)
    parent = os.path.dirname(folder)
    return os.path.dirname(parent) if os.path.basename(parent) == ckpt.CHECKPOINTS_DIR else None


def checkpoint_in_run(checkpoint: str, output: str) -> bool:
    """True when ``checkpoint`` is one of ``output``'s own checkpoints."""
    return os.path.dirname(os.path.realpath(checkpoint)) == os.path.realpath(os.path.join(output,
                                                                                          ckpt.CHECKPOINTS_DIR))


def saved_run_config(output: Optional[str], resume) -> Tuple[dict, str]:
    """The config a resume continues with and the file it came from: the resumed checkpoint's ``meta.json``
    (``resume`` = a checkpoint, or ``auto`` → the newest in ``output``), else ``output/config.yaml``."""
    folder = None
    if resume and resume != "auto":
        folder = ckpt.resolve_checkpoint(resume)
    elif output:
        folder = ckpt.latest_checkpoint(output)
    if folder is not None:
        config = ckpt.read_meta(folder).get("config")
        if isinstance(config, dict):
            return config, os.path.join(folder, ckpt.META_FILE)
    path = os.path.join(output, CONFIG_NAME) if output else None
    if path and os.path.isfile(path):
        config = load_yaml_file(path, "run config")
        if isinstance(config, dict):
            return config, path
    where = output or resume
    raise ToolkitError(f"{where}: no run to resume here (no checkpoint and no {CONFIG_NAME}); give the config "
                       f"with -c, or the run's folder with --output")


def check_resume_config(config: dict, meta: dict, checkpoint: str, *, global_batch: int,
                        allow_change: bool) -> Dict[str, Tuple[object, object]]:
    """Compare ``config`` with the config the checkpoint was trained with; return every change, refusing
    (ToolkitError listing them) changes of what is trained unless ``allow_change``."""
    run_config = meta.get("config")
    if not isinstance(run_config, dict):
        return {}
    changes = config_changes(run_config, config)
    same_global_batch = int(meta.get("global_batch", -1)) == int(global_batch)
    refused = {key: change for key, change in changes.items() if key not in RUN_NEUTRAL_KEYS
               and not (key == "batch_size" and same_global_batch)}
    if refused and not allow_change:
        listed = ", ".join(f"{key} {old!r} → {new!r}" for key, (old, new) in refused.items())
        raise ToolkitError(f"{checkpoint}: the run was trained with another config; resuming would change "
                           f"{listed}. Resume without those options (train.py --output RUN --resume restores "
                           f"the run's own config), or pass --allow-config-change to change the run "
                           f"(recorded in {HISTORY_NAME})")
    return changes


def read_history(output: str) -> Optional[List[dict]]:
    """The entries of ``output/config_history.yaml`` (None when there is none)."""
    path = os.path.join(output, HISTORY_NAME)
    if not os.path.isfile(path):
        return None
    loaded = load_yaml_file(path, "config history")
    return [entry for entry in loaded if isinstance(entry, dict)] if isinstance(loaded, list) else []


def run_records_files(output: str) -> Optional[List[str]]:
    """The VisualDL records files the run's starts wrote (paths, oldest first); None without a history."""
    history = read_history(output)
    if history is None:
        return None
    return [os.path.join(output, entry["visualdl"]) for entry in history if entry.get("visualdl")]


def record_start(config: dict, *, step: int, world_size: int, resumed_from: Optional[str],
                 changes: Dict[str, Tuple[object, object]], records_file: Optional[str] = None) -> str:
    """Append this start to ``OUTPUT/config_history.yaml`` and write ``OUTPUT/config.yaml`` when the run's
    config is new (first start) or changed.  ``records_file``: the VisualDL file this start writes.
    Returns the history file's path."""
    output = config["output"]
    history_path = os.path.join(output, HISTORY_NAME)
    history = read_history(output) or []
    entry = {"started": datetime.datetime.now().isoformat(timespec="seconds"), "step": int(step),
             "processes": int(world_size), "command": " ".join(sys.argv),
             "resumed_from": os.path.relpath(resumed_from, output) if resumed_from else None,
             "visualdl": os.path.relpath(records_file, output) if records_file else None}
    if changes:
        entry["changes"] = {key: {"from": old, "to": new} for key, (old, new) in changes.items()}
    fresh = resumed_from is None
    if fresh:
        entry["config"] = json.loads(json.dumps(config))
    with atomic_write(history_path, "w") as handle:
        yaml.safe_dump(history + [entry], handle, sort_keys=False, allow_unicode=True)
    config_path = os.path.join(output, CONFIG_NAME)
    if fresh or changes or not os.path.isfile(config_path):
        with atomic_write(config_path, "w") as handle:
            handle.write(dump_config(config))
    return history_path
