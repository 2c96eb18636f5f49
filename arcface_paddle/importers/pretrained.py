"""``tools/import_pretrained.py`` as a library call: open weights file → checkpoint + inference model folder.

* ``.onnx``   → a recognizer (:func:`.sface.import_onnx_recognizer`, e.g. OpenCV's SFace → ``MobileNetV1``);
* ``.tflite`` → a BlazeFace detector (``blazeface_paddle.tflite_import.convert_tflite``), network
  ``BlazeFace_short_range`` / ``BlazeFace_full_range`` (or just ``short_range`` / ``full_range``).

Either way the result is exported with ``model.yaml`` recording the preprocessing and the weights' source
(file name, sha256, licence), so the folder can be used and redistributed without guessing.
"""
from __future__ import annotations

import json
import os
from typing import Optional

from ..errors import ToolkitError
from ..model_config import ModelConfig
from ..safe_io import atomic_write

SOURCE_KINDS = {".onnx": "recognizer", ".tflite": "detector"}


def _blazeface_variant(network: str, source: str) -> str:
    name = network.lower()
    for prefix in ("blazeface_", "blazeface-", "blazeface"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    if name not in ("short_range", "full_range"):
        raise ToolkitError(f"{source}: a .tflite file imports into BlazeFace_short_range or BlazeFace_full_range, "
                           f"not {network!r}")
    return name


def _import_recognizer(source: str, network: str, output: str, checkpoint: Optional[str], fmt: str,
                       color_order: Optional[str], fuse_head: bool) -> ModelConfig:
    from ..inference.export import export_model
    from .sface import import_onnx_recognizer, save_imported_checkpoint

    imported = import_onnx_recognizer(source, network=network, color_order=color_order)
    if checkpoint:
        save_imported_checkpoint(imported, checkpoint)
    config = ModelConfig(task="recognition", network=imported.network, input_size=list(imported.input_size),
                         color_order=imported.color_order, mean=[imported.mean] * 3, std=[imported.std] * 3,
                         embedding_size=imported.embedding_size, source=imported.source)
    layer = imported.layer
    if fuse_head:
        if not hasattr(layer, "fused_for_inference"):
            raise ToolkitError(f"{source}: --fuse-head is not available for {network}")
        layer = layer.fused_for_inference()
    return export_model(layer, output, config, fmt=fmt)


def _import_detector(source: str, network: str, output: str, checkpoint: Optional[str], fmt: str) -> ModelConfig:
    from blazeface_paddle.tflite_import import import_tflite_model

    from ..training.checkpoint import BACKBONE_FILE, META_FILE

    variant = _blazeface_variant(network, source)
    checkpoint_params = os.path.join(checkpoint, BACKBONE_FILE) if checkpoint else None  # folder made on write
    config = import_tflite_model(source, variant, output, fmt=fmt, checkpoint_path=checkpoint_params)
    if checkpoint:  # a checkpoint folder (tools/train_detector.py --pretrained DIR) needs meta.json too
        with atomic_write(os.path.join(checkpoint, META_FILE), "w") as handle:
            json.dump({"network": "BlazeFace", "variant": variant, "epoch": 0, "step": 0, "world_size": 1,
                       "imported_from": config.source}, handle, indent=2, sort_keys=True)
    return config


def import_pretrained(source: str, network: str, output: str, checkpoint: Optional[str] = None,
                      fmt: str = "legacy", color_order: Optional[str] = None, fuse_head: bool = False) -> ModelConfig:
    """Import ``source`` (.onnx or .tflite) into ``network``; export to ``output``; returns the model.yaml config.

    ``checkpoint`` (optional folder) also receives ``backbone.pdparams`` + ``meta.json`` for fine-tuning
    (``train.py --pretrained``).  ``color_order`` overrides a recognizer's recorded channel order.
    ``fuse_head`` exports a recognizer with its head BNs folded into the FC (MobileNetV1: same outputs, faster);
    the checkpoint always keeps the trainable, unfused form.
    """
    source = os.fspath(source)
    if not os.path.isfile(source):
        raise ToolkitError(f"{source}: weights file not found")
    extension = os.path.splitext(source)[1].lower()
    if extension not in SOURCE_KINDS:
        raise ToolkitError(f"{source}: unsupported weights format {extension or '(no extension)'}; "
                           f"expected {' or '.join(SOURCE_KINDS)}")
    if os.path.abspath(output) == os.path.abspath(checkpoint or "\0"):
        raise ToolkitError(f"{output}: --output and --checkpoint must be different folders")
    if extension == ".onnx":
        return _import_recognizer(source, network, output, checkpoint, fmt, color_order, fuse_head)
    if color_order or fuse_head:
        raise ToolkitError(f"{source}: --color-order and --fuse-head apply to .onnx recognizers only")
    return _import_detector(source, network, output, checkpoint, fmt)
