"""Detector training configs: YAML files over :data:`DEFAULTS` plus ``-o key=value`` overrides.

Resolution order (later wins): :data:`DEFAULTS` → the YAML file (``base: other.yaml`` chains, relative to
the file) → ``-o`` overrides (dotted keys, YAML-typed values: ``-o augment.flip_probability=0``).  Every
key must exist in :data:`DEFAULTS`; a typo is a :class:`ToolkitError` naming close matches.  The
file reading and override parsing are shared with the recognition trainer (:mod:`arcface_paddle.core.yaml_config`).
"""
from __future__ import annotations

import copy
from typing import Iterable, Optional

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.finite_numbers import check_number_tree
from arcface_paddle.core.yaml_config import check_known_key as _known
from arcface_paddle.core.yaml_config import parse_override, read_yaml_chain

DEFAULTS = {
    "variant": "short_range",            # short_range (128×128) | full_range (192×192)
    "data": {
        "train": None,                   # WIDER FACE or RetinaFace annotation file
        "train_images": None,            # images folder (None: beside the file, or its images/)
        "val": None,                     # annotation file scored with AP during and after training
        "val_images": None,
        "min_face_size": 0.0,            # faces smaller than this (original pixels) are dropped / ignored
        "num_workers": 0,
        # > 0 scenes: write synthetic scenes under <output>/synthetic/ and train / validate on them
        "synthetic": {"train_scenes": 0, "val_scenes": 0, "seed": 0, "val_seed": 1, "image_size": 128,
                      "faces_per_scene": [0, 3], "face_height": [16.0, 80.0]},
    },
    "augment": {"crop_probability": 0.8, "crop_scale": [0.3, 1.0], "flip_probability": 0.5,
                "photometric_probability": 0.5, "min_face_size": 4.0},
    # strategy auto: anchor_scale (IoU with SSD anchor sizes) with several anchor scales (short-range),
    # centre (IoU of the face moved onto the anchor centre) with one (full-range)
    "matching": {"positive_iou": 0.5, "negative_iou": 0.35, "strategy": "auto"},
    "loss": {"box": 1.0, "keypoint": 0.5, "score": 1.0, "negative_ratio": 3.0, "min_negatives": 16},
    "optimizer": "adam",                 # adam | sgd (momentum)
    "lr": 0.001,
    "momentum": 0.9,
    "weight_decay": 0.0,
    "grad_clip_norm": 0.0,               # > 0: clip the global gradient norm
    "lr_schedule": "cosine",             # cosine | step | constant (arcface_paddle.core.lr_schedule)
    "decay_steps": [],                   # boundaries of the step schedule
    "warmup_steps": 0,
    "min_lr": 0.0,
    "max_steps": 1000,
    "batch_size": 32,
    "seed": 0,
    "init_heads": True,                  # from scratch: start heads at anchor-sized boxes (matching.initialize_heads)
    "eval": {"every_steps": 0, "score_threshold": 0.05, "iou_threshold": 0.5, "batch_size": 32},
    "output": "output/blazeface",
    "logdir": None,                      # VisualDL folder; None → <output>/vdl
    "log_every": 10,
    "checkpoint_every_steps": 500,       # and at the end
    "keep_checkpoints": 3,
    "resume": None,                      # None | auto (newest in output) | checkpoint folder
    "pretrained": None,                  # weights to start from: checkpoint folder, .pdparams or MediaPipe .tflite
}
# Every number must be finite and >= 0; these must be > 0.
POSITIVE_KEYS = ("batch_size", "max_steps", "log_every", "checkpoint_every_steps", "eval.batch_size",
                 "data.synthetic.image_size")
AT_MOST = {"data.synthetic.image_size": 4096, "data.synthetic.train_scenes": 10_000_000,
           "data.synthetic.val_scenes": 10_000_000}
CHOICES = {"variant": ("short_range", "full_range"), "optimizer": ("adam", "sgd"),
           "lr_schedule": ("cosine", "step", "constant"), "matching.strategy": ("auto", "anchor_scale", "centre")}


def load_detector_config(path: Optional[str] = None, overrides: Iterable[str] = ()) -> dict:
    config = copy.deepcopy(DEFAULTS)
    if path:
        _merge(config, read_yaml_chain(path), DEFAULTS, source=path, prefix="")
    for item in overrides:
        key, value = parse_override(item)
        _set_dotted(config, key, value, source=f"-o {item}")
    _validate(config)
    return config


def _merge(config: dict, raw: dict, schema: dict, source: str, prefix: str) -> None:
    for key, value in raw.items():
        dotted = prefix + key
        _known(key, schema, dotted, source)
        if isinstance(schema[key], dict):
            if not isinstance(value, dict):
                raise ToolkitError(f"{source}: {dotted} must be a mapping")
            _merge(config[key], value, schema[key], source, dotted + ".")
        else:
            config[key] = value


def _set_dotted(config: dict, key: str, value, source: str) -> None:
    parts, node, schema = key.split("."), config, DEFAULTS
    for depth, part in enumerate(parts):
        dotted = ".".join(parts[:depth + 1])
        _known(part, schema, dotted, source)
        if depth == len(parts) - 1:
            if isinstance(schema[part], dict):
                raise ToolkitError(f"{source}: {dotted} is a section; set one of its keys")
            node[part] = value
        elif not isinstance(schema[part], dict):
            raise ToolkitError(f"{source}: {dotted} is not a section (it holds a single value)")
        else:
            node, schema = node[part], schema[part]


def _validate(config: dict, schema: dict = DEFAULTS, prefix: str = "") -> None:
    for key, default in schema.items():
        value, dotted = config.get(key), prefix + key
        if isinstance(default, dict):
            _validate(value, default, dotted + ".")
            continue
        if value is None or default is None:
            continue
        if isinstance(default, (int, float)) and not isinstance(default, bool) and isinstance(value, str):
            try:            # YAML reads "1e-3" (no dot) as text
                value = config[key] = float(value)
            except ValueError:
                pass
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ToolkitError(f"config {dotted}: expected true or false, found {value!r}")
        elif isinstance(default, (int, float)) and not isinstance(default, bool) and \
                (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ToolkitError(f"config {dotted}: expected a number, found {value!r}")
        elif isinstance(default, list) and not isinstance(value, (list, tuple)):
            raise ToolkitError(f"config {dotted}: expected a list, found {value!r}")
        elif isinstance(default, str) and not isinstance(value, str):
            raise ToolkitError(f"config {dotted}: expected text, found {value!r}")
    if prefix:
        return
    check_number_tree(config, "config", positive=POSITIVE_KEYS, at_most=AT_MOST)
    for key, allowed in CHOICES.items():
        node = config
        for part in key.split("."):
            node = node[part]
        if node not in allowed:
            raise ToolkitError(f"config {key}: {node!r} is not one of {', '.join(allowed)}")
    for key in ("batch_size", "max_steps"):
        if int(config[key]) <= 0:
            raise ToolkitError(f"config {key}: must be positive, found {config[key]!r}")
    if config["resume"] is True:
        config["resume"] = "auto"
    elif config["resume"] is False:
        config["resume"] = None
