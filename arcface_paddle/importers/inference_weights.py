"""Rebuild an eager backbone from an exported legacy inference model folder (e.g. ``inference_model/mobilenet_sface``).

Our exports name every parameter after its place in the layer tree (``body.0.depthwise.conv.weight``, see
``arcface_paddle.inference.export``), so the saved program's persistable variables are exactly the eager
network's ``state_dict`` keys.  That lets tests check the shipped model against its eager network, and lets
users fine-tune from a shipped model without a separate checkpoint.
"""
from __future__ import annotations

import os
from typing import Dict

import numpy as np
import paddle

from arcface_paddle.backbones import get_model
from arcface_paddle.backbones.mobilenet_v1 import STEM_CHANNELS
from arcface_paddle.core.checkpoint import load_weights_into
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.model_yaml import load_model_config


def read_inference_params(model_dir: str) -> Dict[str, np.ndarray]:
    """Every persistable variable of a legacy-format export as ``{name: array}``."""

    config = load_model_config(model_dir)
    if config.format != "legacy":
        raise ToolkitError(f"{model_dir}: reading weights back needs a legacy-format export, found {config.format!r}")
    prefix = os.path.join(model_dir, "inference")
    was_static = not paddle.in_dynamic_mode()
    paddle.enable_static()
    try:
        with paddle.pir_utils.OldIrGuard():
            executor = paddle.static.Executor(paddle.CPUPlace())
            scope = paddle.static.Scope()
            with paddle.static.scope_guard(scope):
                try:
                    program, _, _ = paddle.static.load_inference_model(prefix, executor)
                except Exception as error:
                    lines = str(error).strip().splitlines()
                    raise ToolkitError(f"{prefix}.pdmodel: cannot be loaded "
                                       f"({lines[-1] if lines else type(error).__name__})") from None
                names = [var.name for var in program.list_vars()
                         if var.persistable and var.name not in ("feed", "fetch")]
                return {name: np.array(scope.find_var(name).get_tensor()) for name in names}
    finally:
        if not was_static:
            paddle.disable_static()


def load_layer_from_inference_model(model_dir: str, **backbone_kwargs):
    """``(eager backbone in eval mode, ModelConfig)`` rebuilt from an export folder's weights.

    The network comes from ``model.yaml``; options not given are inferred (``embedding_size`` from
    model.yaml, and for MobileNetV1 the input size, width and head form from the weights).
    """

    config = load_model_config(model_dir)
    if config.task != "recognition":
        raise ToolkitError(f"{model_dir}: model.yaml task is {config.task!r}; only recognition backbones rebuild")
    state = read_inference_params(model_dir)
    kwargs = {"embedding_size": config.embedding_size}
    if config.network == "MobileNetV1" and "stem.conv.weight" in state:
        kwargs.update(input_size=int(config.input_size[0]),
                      width_mult=state["stem.conv.weight"].shape[0] / STEM_CHANNELS,
                      fused_head="head_bn.weight" not in state)   # exported with --fuse-head
    kwargs.update(backbone_kwargs)
    layer = get_model(config.network, **kwargs)
    load_weights_into(layer, state, source=config.params_path(model_dir))
    layer.eval()
    return layer, config
