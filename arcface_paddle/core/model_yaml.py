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
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any, Optional

import yaml

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.safe_io import atomic_write

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


def load_model_config(model_dir: str) -> ModelConfig:
    """Read and check ``model_dir/model.yaml`` and that the files it names exist."""
    path = os.path.join(model_dir, MODEL_CONFIG_NAME)
    if not os.path.isdir(model_dir):
        raise ToolkitError(f"{model_dir}: model folder not found")
    if not os.path.isfile(path):
        raise ToolkitError(f"{path}: missing model.yaml (every model folder needs one; re-export the model)")
    try:
        with open(path, "r", encoding="utf-8") as handle:
            raw = yaml.safe_load(handle)
    except yaml.YAMLError as error:
        raise ToolkitError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ToolkitError(f"{path}: expected a mapping of keys, found {type(raw).__name__}")
    known = {field.name for field in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ToolkitError(f"{path}: unknown key(s) {', '.join(unknown)}")
    missing = [key for key in ("task", "network", "input_size") if key not in raw]
    if missing:
        raise ToolkitError(f"{path}: missing key(s) {', '.join(missing)}")
    config = ModelConfig(**raw)
    if config.task not in TASKS:
        raise ToolkitError(f"{path}: task must be one of {TASKS}, found {config.task!r}")
    if config.format not in PROGRAM_NAMES:
        raise ToolkitError(f"{path}: format must be one of {sorted(PROGRAM_NAMES)}, found {config.format!r}")
    if config.color_order not in ("RGB", "BGR"):
        raise ToolkitError(f"{path}: color_order must be RGB or BGR, found {config.color_order!r}")
    if len(config.input_size) != 2 or len(config.mean) != 3 or len(config.std) != 3:
        raise ToolkitError(f"{path}: input_size needs [height, width] and mean/std three values each")
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
