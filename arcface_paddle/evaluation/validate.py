"""Validate a training checkpoint or an exported model on verification ``.bin`` targets (``valid.py``).

Data flow: ``DIR/NAME.bin`` → images (resized to the model's input size if needed) → embeddings of
image + flip → :func:`evaluate_embeddings` → table, ``results.json``, ``roc_NAME.png``.  A checkpoint runs
through the same Paddle Inference path as its exported model (:mod:`..inference.layer_predictor`): same
speed, identical numbers.  :func:`write_model_thresholds` stores a target's operating thresholds in an
exported model's ``model.yaml``, where the pipeline finds them.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.model_yaml import (
    MODEL_CONFIG_NAME,
    PROGRAM_NAMES,
    load_model_config,
    save_model_config,
)
from arcface_paddle.data.verification_bin import load_verification_bin
from arcface_paddle.evaluation.metrics import DEFAULT_FARS
from arcface_paddle.evaluation.report import results_table, write_results_json
from arcface_paddle.evaluation.roc_plot import plot_roc
from arcface_paddle.evaluation.verification import VerificationResult, check_protocol, evaluate_images, far_label
from arcface_paddle.inference.layer_predictor import predictor_from_layer
from arcface_paddle.inference.recognizer import RecognitionPredictor
from arcface_paddle.preprocessing import REC_IMAGE_SIZE

RESULTS_JSON = "results.json"


def parse_targets(targets) -> List[str]:
    names = [t.strip() for t in (targets.split(",") if isinstance(targets, str) else targets) if t.strip()]
    if not names:
        raise ToolkitError("no verification targets given (e.g. --targets lfw,cfp_fp,agedb_30)")
    if len(set(names)) != len(names):
        raise ToolkitError(f"a target is listed twice: {','.join(names)}")
    for name in names:
        if os.sep in name or name.endswith(".bin"):
            raise ToolkitError(f"target {name!r}: give the set's name (lfw), not a path; --data_dir says where")
    return names


def target_paths(names: Sequence[str], data_dir: str) -> Dict[str, str]:
    """``{name: DIR/name.bin}``, checking every file exists before any slow work starts."""
    if not os.path.isdir(data_dir):
        raise ToolkitError(f"{data_dir}: data folder not found")
    paths = {name: os.path.join(data_dir, f"{name}.bin") for name in names}
    missing = [path for path in paths.values() if not os.path.isfile(path)]
    if missing:
        raise ToolkitError(f"{missing[0]}: verification file not found" +
                           (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return paths


def is_inference_model(path: str) -> bool:
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, MODEL_CONFIG_NAME))


def load_embedder(model_path: str, network: Optional[str] = None, cpu_threads: int = 2, batch_size: int = 64,
                  **backbone_kwargs) -> Tuple[Callable, dict, List[int]]:
    """``(embed_fn, model_info, [height, width])`` for an exported model folder or a training checkpoint."""
    if not os.path.exists(model_path):
        raise ToolkitError(f"{model_path}: model not found (a checkpoint folder, .pdparams file or exported model)")
    if is_inference_model(model_path):
        predictor = RecognitionPredictor(model_path, cpu_threads=cpu_threads, batch_size=2 * batch_size)
        config = predictor.config
        info = {"path": model_path, "kind": "inference", "network": config.network, "format": config.format,
                "embedding_size": config.embedding_size, "model_id": config.model_id}
        return predictor.embed, info, predictor.input_size
    programs = [name for name in PROGRAM_NAMES.values() if os.path.isfile(os.path.join(model_path, name))]
    if os.path.isdir(model_path) and programs:
        raise ToolkitError(f"{os.path.join(model_path, MODEL_CONFIG_NAME)}: missing beside {programs[0]} (it says "
                           f"the input size and preprocessing; re-export with export_inference_model.py)")
    from arcface_paddle.backbones.loading import load_backbone  # heavy (paddle): imported on first use

    layer, meta = load_backbone(model_path, network=network, **backbone_kwargs)
    size = int((meta.get("backbone_kwargs") or {}).get("input_size") or REC_IMAGE_SIZE)
    info = {"path": model_path, "kind": "checkpoint", "network": meta.get("network"),
            "embedding_size": meta.get("embedding_size"), "step": meta.get("step"), "epoch": meta.get("epoch")}
    predictor = predictor_from_layer(layer, network=meta["network"], input_size=[size, size],
                                     cpu_threads=cpu_threads, batch_size=2 * batch_size)
    return predictor.embed, info, [size, size]


def validate(model_path: str, targets, data_dir: str, output_dir: Optional[str] = None, batch_size: int = 64,
             cpu_threads: int = 2, network: Optional[str] = None, progress: bool = True, plot: bool = True,
             backbone_kwargs: Optional[dict] = None, protocol: str = "exact", fars: Sequence[float] = DEFAULT_FARS,
             write_thresholds: Optional[str] = None) -> Tuple[Dict[str, VerificationResult], str]:
    """Evaluate every target; returns ``(results, table text)`` and, with ``output_dir``, writes
    ``results.json`` and ``roc_<target>.png`` there.  ``write_thresholds``: a target whose thresholds go
    into the (exported) model's ``model.yaml``."""

    if batch_size < 1:
        raise ToolkitError(f"batch size must be >= 1, got {batch_size}")
    check_protocol(protocol)
    fars = check_fars(fars)
    names = parse_targets(targets)
    if write_thresholds is not None:
        check_thresholds_request(model_path, write_thresholds, names)
    paths = target_paths(names, data_dir)
    embed, info, input_size = load_embedder(model_path, network=network, cpu_threads=cpu_threads,
                                            batch_size=batch_size, **(backbone_kwargs or {}))
    results: Dict[str, VerificationResult] = {}
    for name, path in paths.items():
        images, issame = load_verification_bin(path, image_size=tuple(input_size))
        try:
            results[name] = evaluate_images(embed, images, issame, batch_size=batch_size, progress=progress,
                                            desc=name, protocol=protocol, fars=fars)
        except ToolkitError as error:
            raise ToolkitError(f"{path}: {error}") from None
    table = results_table(results)
    if write_thresholds is not None:
        write_model_thresholds(model_path, write_thresholds, results[write_thresholds])
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        write_results_json(os.path.join(output_dir, RESULTS_JSON), results, info)
        if plot:
            label = f"{info.get('network')} ({info['kind']} {os.path.basename(os.path.normpath(model_path))}"
            label += f", step {info['step']})" if info.get("step") is not None else ")"
            for name, result in results.items():
                if result.auc is not None:          # both genuine and impostor pairs present
                    plot_roc(result, os.path.join(output_dir, f"roc_{name}.png"), name, subtitle=label)
    return results, table


def check_fars(fars) -> tuple:
    """FARs as a tuple of rates in (0, 1) (``"1e-2,1e-3"`` or numbers)."""
    items = fars.split(",") if isinstance(fars, str) else list(fars)
    try:
        values = tuple(float(item) for item in items if str(item).strip())
    except ValueError:
        raise ToolkitError(f"FARs must be numbers like 1e-3, got {fars!r}") from None
    if not values or any(not 0.0 < value < 1.0 for value in values):
        raise ToolkitError(f"FARs must be false accept rates in (0, 1), got {fars!r}")
    return values


def check_thresholds_request(model_path: str, target: str, targets: Sequence[str]) -> None:
    """Refuse, before any slow work, a threshold write that cannot happen."""
    if target not in targets:
        raise ToolkitError(f"--write_thresholds {target}: not among the targets evaluated ({','.join(targets)})")
    if not is_inference_model(model_path):
        raise ToolkitError(f"{model_path}: thresholds are written into an exported model's {MODEL_CONFIG_NAME}; "
                           f"export the checkpoint first (export_inference_model.py) and validate that folder")
    config = load_model_config(model_path)
    if config.task != "recognition":
        raise ToolkitError(f"{os.path.join(model_path, MODEL_CONFIG_NAME)}: task is {config.task!r}, "
                           f"thresholds belong to recognition models")


def model_thresholds(target: str, result: VerificationResult, model_id: Optional[str]) -> dict:
    """The ``thresholds`` field of ``model.yaml`` from one target's result (cosine values: FAR thresholds rounded
    up to 1e-6, so rounding never lets more impostors in)."""
    thresholds = {"target": target, "pairs": int(result.num_pairs), "protocol": result.protocol,
                  "best_accuracy": round(float(result.best_threshold), 6),
                  "accuracy": round(float(result.best_accuracy if result.best_accuracy is not None
                                          else result.accuracy), 6),
                  "far": {far_label(far): math.ceil(result.threshold_at_far[far] * 1e6) / 1e6
                          for far in result.fars if far in result.threshold_at_far}}
    if model_id:
        thresholds["model_id"] = str(model_id)
    return thresholds


def write_model_thresholds(model_dir: str, target: str, result: VerificationResult) -> dict:
    """Store ``target``'s thresholds in ``model_dir/model.yaml`` (atomically; every other key kept)."""
    config = load_model_config(model_dir)
    thresholds = model_thresholds(target, result, config.model_id)
    save_model_config(model_dir, dataclasses.replace(config, thresholds=thresholds))
    return thresholds
