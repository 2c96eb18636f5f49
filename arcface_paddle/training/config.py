"""Training configs as data: YAML files over :data:`DEFAULTS`, plus ``-o key=value`` and flag overrides.

Resolution order (later wins): :data:`DEFAULTS` → the ``base:`` chain of the YAML file (a config may name
``base: base.yaml``, relative to itself) → the YAML file → seed flags (``--lr 0.2`` …) → ``-o`` overrides
(dotted keys, YAML-typed values: ``-o data.num_workers=0 -o decay_epochs=[4,8]``).

Every key must exist in :data:`DEFAULTS` (except inside ``backbone_kwargs``, which is passed to the
backbone): a typo is a :class:`ToolkitError` naming close matches, raised before anything runs.
"""
from __future__ import annotations

import copy
from typing import Iterable, Mapping, Optional

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.finite_numbers import check_number_tree
from arcface_paddle.core.yaml_config import check_known_key, parse_override, read_yaml_chain

# Every key a training config may set, with its default.  configs/base.yaml documents the recipe values.
DEFAULTS = {
    # --- model
    "network": "MobileFaceNet_128",     # registry name (arcface_paddle.backbones)
    "embedding_size": 128,
    "backbone_kwargs": {},              # extra backbone options (width, dropout, ...), passed as keywords
    # --- loss
    "loss": "arcface",                  # arcface | cosface | triplet (also combined, sphereface, softmax)
    "margin": {"s": None, "m1": None, "m2": None, "m3": None},  # None → the preset of `loss`
    "sample_ratio": 1.0,                # PartialFC: fraction of class centres sampled per step
    "sparse_update": False,             # PartialFC: update only the sampled centres (sgd; less memory, see docs/gpu.md)
    "center_loss_weight": 0.0,          # > 0 adds center loss beside the softmax (or triplet) loss
    "center_loss": {"update": "gradient", "alpha": 0.5, "lr_scale": 1.0},  # see losses/center.py
    "triplet": {"margin": 0.2, "mining": "semi_hard", "images_per_identity": 4},
    # --- optimisation
    "optimizer": "sgd",                 # sgd (momentum) | adam | adamw
    "lr": 0.1,                          # for a global batch of lr_reference_batch images
    "lr_reference_batch": 512,          # lr is scaled by global_batch / lr_reference_batch (0: no scaling)
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "adam_betas": [0.9, 0.999],
    "adam_epsilon": 1e-8,
    "grad_clip_norm": 0.0,              # > 0: clip the global gradient norm
    "lr_schedule": "step",              # step | cosine | constant
    "warmup_epochs": 0.0,
    "decay_epochs": [10, 16, 22],       # step schedule boundaries (epochs, may be fractional)
    "decay_rate": 0.1,
    "min_lr": 0.0,                      # cosine floor
    "num_epochs": 25,
    "max_steps": 0,                     # > 0: stop after this many steps (the schedule still spans num_epochs)
    "batch_size": 128,                  # per process; global batch = batch_size × processes
    "fp16": False,                      # AMP fp16 on GPU (ignored with a warning on CPU)
    "sync_bn": False,                   # multi-process: batch-norm statistics over the global batch
    "device": "auto",                   # auto (GPU when paddle has one) | cpu | gpu
    "cpu_threads": 0,                   # CPU math threads per process; 0 → cores available / processes here
    "seed": 2024,
    # --- data
    "data": {
        "kind": "shards",               # shards | folder | synthetic
        "root": None,                   # shards: folder with label.txt; folder: identity tree
        "label_file": None,             # optional label.txt for kind=folder
        "num_classes": None,            # None → from the data (label.txt / classes.txt); labels must be below it
        "image_size": 112,              # network input side; images are resized to it
        "num_workers": 2,
        "flip": True,                   # random horizontal flip (deterministic in (seed, epoch, batch))
        "synthetic": {"num_identities": 100, "images_per_identity": 20, "seed": 0},
    },
    # --- validation on .bin pairs (paths, or names looked up as <data.root>/<name>.bin)
    "validation": {"targets": [], "every_steps": 2000, "batch_size": 64,
                   "fars": [1e-2, 1e-3, 1e-4],    # TAR@FAR reported where the impostor count can measure it
                   "protocol": "exact"},          # exact | reference (insightface's grid; docs/training_runs.md)
    # --- output
    "output": "output/run",
    "logdir": None,                     # VisualDL folder; None → <output>/vdl
    "log_every": 10,
    "checkpoint_every_steps": 2000,     # also saved at every epoch end
    "keep_checkpoints": 3,
    "resume": None,                     # None | auto (newest in output) | checkpoint folder
    "pretrained": None,                 # backbone checkpoint to start from (fine-tuning)
    "pretrained_skip": [],              # parameter name prefixes allowed to differ (e.g. a new head: [fc, features])
}

OPEN_KEYS = ("backbone_kwargs",)        # free-form mappings, not checked key by key
# Every number in a config must be finite and >= 0; these must be > 0 (None, where allowed, means "from data").
POSITIVE_KEYS = ("batch_size", "num_epochs", "lr", "embedding_size", "adam_epsilon", "log_every",
                 "data.image_size", "data.num_classes", "data.synthetic.num_identities",
                 "data.synthetic.images_per_identity", "triplet.images_per_identity", "validation.batch_size")
# Sizes that allocate in proportion: bounded far above any real run, far below a memory blow-up.
AT_MOST = {"data.image_size": 1024, "embedding_size": 65536, "data.num_classes": 2 ** 31,
           "data.synthetic.num_identities": 10_000_000, "data.synthetic.images_per_identity": 100_000}
_FRACTIONAL = ("num_epochs",)           # int defaults that may also be fractional
# keys whose default is None ("from the loss preset / the data") but which hold a number when set
_NUMBER_OR_NONE = {"margin.s": 0.0, "margin.m1": 0.0, "margin.m2": 0.0, "margin.m3": 0.0, "data.num_classes": 0}
CHOICES = {
    "loss": ("arcface", "cosface", "triplet", "combined", "sphereface", "softmax"),
    "optimizer": ("sgd", "adam", "adamw"),
    "lr_schedule": ("step", "cosine", "constant"),
    "data.kind": ("shards", "folder", "synthetic"),
    "device": ("auto", "cpu", "gpu"),
    "center_loss.update": ("gradient", "mean"),
    "triplet.mining": ("semi_hard", "batch_all", "batch_hard"),
    "validation.protocol": ("exact", "reference"),
}

# The seed train.py's flags and the config key each sets.
FLAG_KEYS = {
    "network": "network", "lr": "lr", "batch_size": "batch_size", "weight_decay": "weight_decay",
    "embedding_size": "embedding_size", "logdir": "logdir", "output": "output", "resume": "resume",
    "pretrained": "pretrained",
}


def load_config(path: Optional[str] = None, *, overrides: Iterable[str] = (),
                flags: Optional[Mapping[str, object]] = None, saved: Optional[dict] = None,
                saved_source: str = "saved config") -> dict:
    """Resolve a full config: defaults ← YAML (with its ``base:`` chain) ← flags ← ``-o`` overrides.

    ``saved``: a run's resolved config (what ``--resume`` continues) used instead of a YAML file."""
    config = copy.deepcopy(DEFAULTS)
    if saved is not None:
        _merge(config, copy.deepcopy(saved), source=saved_source)
    if path:
        _merge(config, read_yaml_chain(path), source=path)
    for flag, value in (flags or {}).items():
        if value is None:
            continue
        if flag not in FLAG_KEYS:
            raise ToolkitError(f"unknown flag --{flag}")
        set_dotted(config, FLAG_KEYS[flag], value, source=f"--{flag}")
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(config, key, value, source=f"-o {item}")
    validate(config)
    return config


def set_dotted(config: dict, key: str, value, *, source: str) -> None:
    """Set ``config["a"]["b"] = value`` for key ``a.b``, refusing keys the schema does not know."""
    parts = key.split(".")
    node, schema = config, DEFAULTS
    for depth, part in enumerate(parts[:-1]):
        prefix = ".".join(parts[:depth + 1])
        if prefix in OPEN_KEYS:
            node = node.setdefault(part, {})
            schema = None
            continue
        if schema is not None:
            check_known_key(part, schema, prefix, source)
            if not isinstance(schema[part], dict):
                raise ToolkitError(f"{source}: {prefix} is not a section (it holds a single value)")
            schema = schema[part]
        node = node.setdefault(part, {})
    if schema is not None:
        check_known_key(parts[-1], schema, key, source)
    node[parts[-1]] = value


def validate(config: dict) -> None:
    """Check value types and choices; raise ToolkitError naming the key."""
    _check_types(config, DEFAULTS, prefix="")
    check_number_tree(config, "config", positive=POSITIVE_KEYS, allow_negative=("backbone_kwargs.",), at_most=AT_MOST)
    for key, allowed in CHOICES.items():
        value = get_dotted(config, key)
        if value not in allowed:
            raise ToolkitError(f"config {key}: {value!r} is not one of {', '.join(allowed)}")
    for key in ("batch_size", "num_epochs"):
        if not config[key] or config[key] <= 0:
            raise ToolkitError(f"config {key}: must be positive, found {config[key]!r}")
    if config["cpu_threads"] < 0:
        raise ToolkitError(f"config cpu_threads: must be >= 0 (0: one per core available), "
                           f"found {config['cpu_threads']!r}")
    if not 0.0 < float(config["sample_ratio"]) <= 1.0:
        raise ToolkitError(f"config sample_ratio: must be in (0, 1], found {config['sample_ratio']!r}")
    _check_schedule_values(config)
    if config["resume"] is True:
        config["resume"] = "auto"
    elif config["resume"] is False:
        config["resume"] = None


def _check_schedule_values(config: dict) -> None:
    """Refuse values that would make steps train at lr 0 (or below): the reference's schedule had a whole
    last epoch at lr 0; here the schedule itself never reaches 0, so only a config can ask for it."""
    for key in ("lr", "decay_rate", "min_lr", "warmup_epochs"):
        if config[key] is None:
            raise ToolkitError(f"config {key}: needs a number, found null")
    lr, decay_rate, min_lr = float(config["lr"]), float(config["decay_rate"]), float(config["min_lr"])
    if lr <= 0:
        raise ToolkitError(f"config lr: must be positive, found {config['lr']!r}")
    if config["lr_schedule"] == "step" and not 0.0 < decay_rate <= 1.0:
        raise ToolkitError(f"config decay_rate: must be in (0, 1] (0 would train every step after the first "
                           f"decay at lr 0), found {config['decay_rate']!r}")
    if config["lr_schedule"] == "cosine" and not 0.0 <= min_lr < lr:
        raise ToolkitError(f"config min_lr: must be in [0, lr) = [0, {lr:g}), found {config['min_lr']!r}")
    if float(config["warmup_epochs"]) < 0:
        raise ToolkitError(f"config warmup_epochs: must be >= 0, found {config['warmup_epochs']!r}")


def get_dotted(config: dict, key: str):
    node = config
    for part in key.split("."):
        node = node[part]
    return node


def _merge(config: dict, raw: dict, *, source: str, prefix: str = "") -> None:
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if dotted in OPEN_KEYS:
            if value is not None and not isinstance(value, dict):
                raise ToolkitError(f"{source}: {dotted} must be a mapping of options")
            config[key] = dict(value or {})
            continue
        schema = get_dotted(DEFAULTS, prefix[:-1]) if prefix else DEFAULTS
        check_known_key(key, schema, dotted, source)
        if isinstance(schema[key], dict) and isinstance(value, dict):
            _merge(config[key], value, source=source, prefix=dotted + ".")
        else:
            config[key] = value


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def _check_types(config: dict, schema: dict, prefix: str) -> None:
    for key, default in schema.items():
        value = config.get(key)
        dotted = prefix + key
        default = _NUMBER_OR_NONE.get(dotted, default)
        if dotted in OPEN_KEYS or default is None or value is None:
            continue
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ToolkitError(f"config {dotted}: expected a mapping, found {value!r}")
            _check_types(value, default, dotted + ".")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ToolkitError(f"config {dotted}: expected true or false, found {value!r}")
        elif isinstance(default, (int, float)):
            if isinstance(value, str):
                value = config[key] = _number(value)   # YAML 1.1 reads "1e-3" as text
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ToolkitError(f"config {dotted}: expected a number, found {value!r}")
            if isinstance(default, int) and dotted not in _FRACTIONAL and isinstance(value, float) \
                    and not value.is_integer():
                raise ToolkitError(f"config {dotted}: expected a whole number, found {value!r}")
        elif isinstance(default, list):
            if not isinstance(value, (list, tuple)):
                raise ToolkitError(f"config {dotted}: expected a list, found {value!r}")
        elif isinstance(default, str) and not isinstance(value, str):
            raise ToolkitError(f"config {dotted}: expected text, found {value!r}")
