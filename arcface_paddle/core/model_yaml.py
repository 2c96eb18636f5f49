"""``model.yaml``: what an exported model needs so nobody ever guesses its preprocessing.

Every folder in ``inference_model/`` (and every export) holds the program + params and a ``model.yaml``:

    task: recognition            # or detection
    network: MobileFaceNet_128   # registry name of the network
    format: legacy               # legacy → inference.pdmodel, pir → inference.json; params in inference.pdiparams
    input_size: [112, 112]       # height, width fed to the program
    color_order: RGB             # channel order the program expects
    mean: [127.5, 127.5, 127.5]  # program input = (pixel - mean) / std, per channel in color_order
    std: [127.5, 127.5, 127.5]
    embedding_size: 128          # recognition only
    model_id: 3f2a...            # sha256 (first 16 hex) of inference.pdiparams: a gallery remembers it
    detector: {...}              # detection only: anchors, thresholds, keypoint names (blazeface_paddle)
    source: {...}                # optional: where imported weights came from, checksum, licence
    thresholds:                  # recognition, optional: written by `valid.py --write_thresholds lfw`
      target: lfw                # the verification set they were measured on
      pairs: 6000
      protocol: exact
      best_accuracy: 0.4912      # cosine similarity with the best accuracy there (the pipeline's default)
      accuracy: 0.9951           # accuracy at it
      far: {1e-02: 0.31, 1e-03: 0.41, 1e-04: 0.52}   # lowest cosine threshold keeping FAR at or under each
      model_id: 3f2a...          # the weights measured (must equal model_id above)

Every field is checked when the file is read (:data:`FIELD_CHECKS`: one line per field — a new field is one
line there and one in :class:`ModelConfig`), and the params file against ``model_id`` when a model loads
(:func:`verify_params`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
from typing import Any, Optional

import yaml

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.safe_io import atomic_write
from arcface_paddle.core.yaml_config import read_yaml_mapping

MODEL_CONFIG_NAME = "model.yaml"
PARAMS_NAME = "inference.pdiparams"
PROGRAM_NAMES = {"legacy": "inference.pdmodel", "pir": "inference.json"}
TASKS = ("recognition", "detection")


@dataclasses.dataclass
class ModelConfig:
    task: str
    network: str
    input_size: list
    color_order: str = "RGB"
    mean: list = dataclasses.field(default_factory=lambda: [127.5, 127.5, 127.5])
    std: list = dataclasses.field(default_factory=lambda: [127.5, 127.5, 127.5])
    format: str = "legacy"
    embedding_size: Optional[int] = None
    model_id: Optional[str] = None
    detector: Optional[dict] = None
    source: Optional[dict] = None
    thresholds: Optional[dict] = None

    def program_path(self, model_dir: str) -> str:
        return os.path.join(model_dir, PROGRAM_NAMES[self.format])

    def params_path(self, model_dir: str) -> str:
        return os.path.join(model_dir, PARAMS_NAME)

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}


def file_sha256(path: str) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (imported weights record their source's)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def params_fingerprint(params_path: str) -> str:
    """First 16 hex digits of the params file's sha256: the model's identity for galleries."""
    return file_sha256(params_path)[:16]


def save_model_config(model_dir: str, config: ModelConfig) -> str:
    path = os.path.join(model_dir, MODEL_CONFIG_NAME)
    with atomic_write(path, "w") as handle:
        yaml.safe_dump(config.to_dict(), handle, sort_keys=False)
    return path


# ---- validation: one line per field (name → check); a check returns the value to keep or raises _Invalid
class _Invalid(Exception):
    pass


def _choice(*options):
    def check(value):
        if value not in options:
            raise _Invalid(f"must be one of {', '.join(options)}")
        return value
    return check


def _text(value):
    if not isinstance(value, str) or not value.strip():
        raise _Invalid("must be non-empty text")
    return value


def _number(value, *, positive=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Invalid("must be finite numbers")
    if positive and value <= 0:
        raise _Invalid("must be positive numbers")
    return float(value) if isinstance(value, float) else value


def _numbers(count, *, positive=False):
    def check(value):
        if not isinstance(value, (list, tuple)) or len(value) != count:
            raise _Invalid(f"must be a list of {count} numbers")
        return [_number(item, positive=positive) for item in value]
    return check


def _whole(low, high):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _Invalid(f"must be a whole number in [{low}, {high}]")
        return value
    return check


def _pixels_pair(value):
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _Invalid("must be [height, width]")
    return [_whole(1, MAX_INPUT_SIDE)(side) for side in value]


def _hex_id(value):
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{16}", value):
        raise _Invalid("must be 16 lowercase hex digits (the first 16 of inference.pdiparams' sha256)")
    return value


def _mapping(value):
    if not isinstance(value, dict):
        raise _Invalid("must be a mapping")
    return value


MAX_INPUT_SIDE = 4096
REQUIRED = ("task", "network", "input_size")
FIELD_CHECKS = {
    "task": _choice(*TASKS),
    "network": _text,
    "input_size": _pixels_pair,
    "color_order": _choice("RGB", "BGR"),
    "mean": _numbers(3),
    "std": _numbers(3, positive=True),
    "format": _choice(*PROGRAM_NAMES),
    "embedding_size": _whole(1, 1 << 16),
    "model_id": _hex_id,
    "detector": _mapping,
    "source": _mapping,
    "thresholds": _mapping,          # keys and values: check_thresholds
}


def check_model_fields(raw: dict, path: str) -> dict:
    """Every field of a ``model.yaml`` mapping checked by :data:`FIELD_CHECKS`; returns the checked values."""
    unknown = sorted(set(raw) - set(FIELD_CHECKS))
    if unknown:
        raise ToolkitError(f"{path}: unknown key(s) {', '.join(map(str, unknown))}")
    missing = [key for key in REQUIRED if key not in raw]
    if missing:
        raise ToolkitError(f"{path}: missing key(s) {', '.join(missing)}")
    checked = {}
    for key, value in raw.items():
        if value is None and key not in REQUIRED:
            continue
        try:
            checked[key] = FIELD_CHECKS[key](value)
        except _Invalid as problem:
            raise ToolkitError(f"{path}: {key} {problem}, found {value!r}"[:300]) from None
    return checked


def load_model_config(model_dir: str) -> ModelConfig:
    """Read and check ``model_dir/model.yaml`` (every field's type and range) and that the files it names exist."""
    path = os.path.join(model_dir, MODEL_CONFIG_NAME)
    if not os.path.isdir(model_dir):
        raise ToolkitError(f"{model_dir}: model folder not found")
    if not os.path.isfile(path):
        raise ToolkitError(f"{path}: missing model.yaml (every model folder needs one; re-export the model)")
    raw = read_yaml_mapping(path, "model.yaml")
    config = ModelConfig(**check_model_fields(raw, path))
    if config.thresholds is not None:
        check_thresholds(path, config.thresholds, config.model_id)
    for file_path in (config.program_path(model_dir), config.params_path(model_dir)):
        if not os.path.isfile(file_path):
            raise ToolkitError(f"{file_path}: model file missing (model.yaml names format {config.format!r})")
    return config


THRESHOLD_KEYS = {"target": str, "pairs": int, "protocol": str, "best_accuracy": float, "accuracy": float,
                  "far": dict, "model_id": str}


def _cosine(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and -1.0 <= float(value) <= 1.0 + 1e-6


def check_thresholds(path: str, thresholds, model_id: Optional[str]) -> None:
    """The ``thresholds`` field: known keys of the right kinds, cosine values in [-1, 1], FAR keys that are
    rates in (0, 1), and measured on these weights (``model_id`` equal to the model's)."""
    if not isinstance(thresholds, dict):
        raise ToolkitError(f"{path}: thresholds must be a mapping, found {type(thresholds).__name__}")
    unknown = sorted(set(thresholds) - set(THRESHOLD_KEYS))
    if unknown:
        raise ToolkitError(f"{path}: unknown key(s) in thresholds: {', '.join(map(str, unknown))}")
    if "best_accuracy" not in thresholds:
        raise ToolkitError(f"{path}: thresholds needs best_accuracy (a cosine similarity)")
    for key, kind in THRESHOLD_KEYS.items():
        value = thresholds.get(key)
        if value is None:
            continue
        if kind is float and not _cosine(value):
            raise ToolkitError(f"{path}: thresholds.{key} must be a number in [-1, 1], found {value!r}")
        if kind in (str, dict) and not isinstance(value, kind):
            raise ToolkitError(f"{path}: thresholds.{key} must be {'text' if kind is str else 'a mapping'}, "
                               f"found {value!r}")
        if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ToolkitError(f"{path}: thresholds.{key} must be a positive whole number, found {value!r}")
    for far, value in (thresholds.get("far") or {}).items():
        try:
            rate = float(far)
        except (TypeError, ValueError):
            rate = -1.0
        if not 0.0 < rate < 1.0:
            raise ToolkitError(f"{path}: thresholds.far key {far!r} is not a false accept rate in (0, 1)")
        if not _cosine(value):
            raise ToolkitError(f"{path}: thresholds.far[{far}] must be a number in [-1, 1], found {value!r}")
    measured = thresholds.get("model_id")
    if measured and model_id and str(measured) != str(model_id):
        raise ToolkitError(f"{path}: thresholds were measured on model_id {measured} but the weights are "
                           f"{model_id}; re-run valid.py --write_thresholds")


def model_threshold(config: ModelConfig) -> Optional[tuple]:
    """``(cosine threshold, where it comes from)`` of a recognition model that carries thresholds, else None."""
    if not config.thresholds:
        return None
    measured = config.thresholds
    target = measured.get("target", "a verification set")
    return float(measured["best_accuracy"]), f"the model's best-accuracy threshold on {target}"


def verify_params(model_dir: str, config: ModelConfig, params: Optional[bytes] = None) -> None:
    """The params file must be the one ``model.yaml``'s ``model_id`` was computed from.

    A flipped bit or a truncated copy gives a model that runs and answers wrongly (every face "unknown"),
    so it is refused when the model loads.  A model.yaml without ``model_id`` gets the file's fingerprint.
    ``params``: the file's bytes when the caller has already read them.
    """
    params_path = config.params_path(model_dir)
    if params is not None:
        found = hashlib.sha256(params).hexdigest()[:16]
    else:
        try:
            found = params_fingerprint(params_path)
        except OSError as error:
            raise ToolkitError(f"{params_path}: cannot read ({error.strerror or error})") from None
    if config.model_id is None:
        config.model_id = found
    elif found != config.model_id:
        raise ToolkitError(f"{params_path}: does not match model.yaml (its sha256 starts {found}, model_id says "
                           f"{config.model_id}): the weights are corrupt or were replaced; copy or export the "
                           "model again")
