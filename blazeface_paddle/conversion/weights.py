"""BlazeFace weights into a layer: training checkpoints, ``.pdparams`` state dicts and MediaPipe ``.tflite``."""
from __future__ import annotations

import os
from typing import Optional

from arcface_paddle.core import checkpoint as ckpt
from arcface_paddle.core.errors import ToolkitError
from blazeface_paddle.conversion.tflite_import import convert_tflite
from blazeface_paddle.network.model import BlazeFace


def load_pretrained(layer, path: str) -> None:
    """Weights from a checkpoint folder, a ``.pdparams`` state dict or MediaPipe's ``.tflite`` graph."""
    if str(path).endswith(".tflite"):
        imported, _ = convert_tflite(path, layer.variant.name)
        layer.set_state_dict(imported.state_dict())
        return
    if os.path.isdir(path):
        folder = ckpt.resolve_checkpoint(path)
        saved = ckpt.read_meta(folder).get("variant")
        if saved and saved != layer.variant.name:
            raise ToolkitError(f"{folder}: weights of BlazeFace {saved}, the config trains {layer.variant.name}")
    params = ckpt.backbone_state_path(path)
    ckpt.load_weights_into(layer, ckpt.load_state(params), source=params)


def load_detector(path: str, variant: Optional[str] = None):
    """A BlazeFace in eval mode from a training checkpoint (folder or output folder) or ``.pdparams``."""
    if os.path.isdir(path):
        variant = variant or ckpt.read_meta(ckpt.resolve_checkpoint(path)).get("variant")
    if not variant:
        raise ToolkitError(f"{path}: cannot tell the BlazeFace variant; pass variant=short_range or full_range")
    layer = BlazeFace(variant)
    load_pretrained(layer, path)
    layer.eval()
    return layer
