"""Export an eager backbone to a Paddle Inference model folder, byte-for-byte reproducibly.

Folder written (``fmt="legacy"``, the default; most deployments read it)::

    inference.pdmodel   inference.pdiparams   model.yaml   [inference.onnx]

``fmt="pir"`` writes ``inference.json`` instead of ``inference.pdmodel``.  Both load in
``paddle.inference`` (see :mod:`.predictor`).

How the two formats are chosen in one process (paddle 3.3.1): ``paddle.jit.save`` writes PIR
(``.json``) while ``FLAGS_enable_pir_api`` is on (the default) and the legacy ``.pdmodel`` when it is
off; the flag is read at import time, so ``paddle.set_flags`` afterwards has no effect on jit.save.
``paddle.pir_utils.DygraphOldIrGuard()`` / ``DygraphPirGuard()`` switch the mode for a block of
code, which works in-process whatever the environment says — no subprocess needed.  (``OldIrGuard``
/ ``IrGuard`` also switch to static mode, which breaks ``named_parameters`` on an eager layer.)

Why exports are reproducible here (the reference's were not): program text normally carries
process-global counters — parameter names (``conv2d_17.w_0``), layer struct names (``/Conv2D_3/``),
temporary variable names — and the legacy format records each op's Python call stack (file paths,
line numbers).  We rename parameters after their place in the layer tree for the duration of the
save, reset the name counters, and strip ``op_callstack`` from the legacy program.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from typing import Iterator, Optional

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.model_yaml import (
    PARAMS_NAME,
    PROGRAM_NAMES,
    ModelConfig,
    params_fingerprint,
    save_model_config,
)
from arcface_paddle.core.program_export import (
    MIN_ONNX_OPSET,
    ONNX_NAME,
    check_export_folder,
    export_onnx,
    move_export_into_place,
    rewrite_legacy_program,
)
from arcface_paddle.preprocessing import REC_COLOR_ORDER, REC_IMAGE_SIZE, TRAIN_MEAN, TRAIN_STD

INPUT_NAME = "x"


@contextlib.contextmanager
def _canonical_names(layer) -> Iterator[None]:
    """Name parameters/buffers by their path in the layer and reset paddle's global name counters."""
    import paddle  # heavy (paddle): imported on first use
    from paddle.base import framework  # heavy (paddle): imported on first use

    renamed = []
    for name, tensor in [*layer.named_parameters(), *layer.named_buffers()]:
        renamed.append((tensor, tensor.name))
        tensor.name = name
    saved = framework._name_struct, framework._name_scope
    framework._name_struct, framework._name_scope = framework.NameStruct(), framework.NameScope()
    try:
        with paddle.utils.unique_name.guard():
            yield
    finally:
        framework._name_struct, framework._name_scope = saved
        for tensor, name in renamed:
            tensor.name = name


def _probe_output_size(layer, input_size, task: str) -> Optional[int]:
    """Run the layer once on zeros: a clear error now beats a tracing error wall inside jit.save."""
    import paddle  # heavy (paddle): imported on first use

    height, width = input_size
    try:
        with paddle.no_grad():
            output = layer(paddle.zeros([1, 3, height, width], dtype="float32"))
    except Exception as error:  # the layer cannot take this input size: say so in one line
        detail = str(error).strip().splitlines()
        raise ToolkitError(f"network cannot run on input [N,3,{height},{width}]: {type(error).__name__}"
                           + (f": {detail[0]}" if detail else "")) from None
    if task != "recognition":
        return None
    if not isinstance(output, paddle.Tensor) or output.ndim != 2:
        shape = list(output.shape) if isinstance(output, paddle.Tensor) else type(output).__name__
        raise ToolkitError(f"network output is {shape}, a recognition model must give [N, embedding_size]")
    return int(output.shape[1])


def _save_program(layer, prefix: str, fmt: str, input_size) -> None:
    import paddle  # heavy (paddle): imported on first use
    from paddle.static import InputSpec  # heavy (paddle): imported on first use

    guard = paddle.pir_utils.DygraphOldIrGuard() if fmt == "legacy" else paddle.pir_utils.DygraphPirGuard()
    spec = [InputSpec([None, 3, int(input_size[0]), int(input_size[1])], "float32", INPUT_NAME)]
    with _canonical_names(layer), guard:
        paddle.jit.save(layer, prefix, input_spec=spec)


def export_model(layer, output_dir: str, config: ModelConfig, fmt: str = "legacy", onnx: bool = False,
                 onnx_opset: int = MIN_ONNX_OPSET) -> ModelConfig:
    """Export ``layer`` (eval mode, input ``[-1, 3, H, W]`` float32, H×W = ``config.input_size``).

    Writes the program, ``inference.pdiparams``, optionally ``inference.onnx``, and ``model.yaml``
    (``format`` and ``model_id`` = params fingerprint filled in; ``embedding_size`` checked against the
    network's real output).  Everything is written to a temporary folder beside ``output_dir`` and
    renamed into place, ``model.yaml`` last, so a folder with a ``model.yaml`` is always complete.
    Returns the config written.
    """
    if fmt not in PROGRAM_NAMES:
        raise ToolkitError(f"export format must be one of {sorted(PROGRAM_NAMES)}, got {fmt!r}")
    input_size = [int(v) for v in config.input_size]
    if len(input_size) != 2 or min(input_size) < 1:
        raise ToolkitError(f"input_size must be [height, width], got {config.input_size!r}")
    output_dir = os.path.abspath(output_dir)
    check_export_folder(output_dir)

    was_training = layer.training
    layer.eval()
    try:
        width = _probe_output_size(layer, input_size, config.task)
        if config.task == "recognition" and config.embedding_size not in (None, width):
            raise ToolkitError(f"embedding_size {config.embedding_size} given but the network outputs {width}")
        parent = os.path.dirname(output_dir)
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix="." + os.path.basename(output_dir) + ".export-", dir=parent)
        try:
            prefix = os.path.join(staging, "inference")
            _save_program(layer, prefix, fmt, input_size)
            program_path = os.path.join(staging, PROGRAM_NAMES[fmt])
            params_path = os.path.join(staging, PARAMS_NAME)
            if fmt == "legacy":
                rewrite_legacy_program(program_path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(prefix + ".pdiparams.info")   # pickled name map only paddle.jit.load wants
            if onnx:
                export_onnx(program_path, params_path, os.path.join(staging, ONNX_NAME), onnx_opset)
            written = dataclasses.replace(
                config, format=fmt, input_size=input_size, model_id=params_fingerprint(params_path),
                embedding_size=width if config.task == "recognition" else config.embedding_size)
            save_model_config(staging, written)
            move_export_into_place(staging, output_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        if was_training:
            layer.train()
    return written


def recognition_config(network: str, embedding_size: Optional[int] = None, input_size=None,
                       source: Optional[dict] = None) -> ModelConfig:
    """The ``model.yaml`` contents for a recognition backbone trained by this toolkit."""

    return ModelConfig(task="recognition", network=network,
                       input_size=list(input_size or [REC_IMAGE_SIZE, REC_IMAGE_SIZE]),
                       color_order=REC_COLOR_ORDER, mean=[TRAIN_MEAN] * 3, std=[TRAIN_STD] * 3,
                       embedding_size=embedding_size, source=source)


def export_checkpoint(checkpoint: str, output_dir: str, network: Optional[str] = None, fmt: str = "legacy",
                      onnx: bool = False, **backbone_kwargs) -> ModelConfig:
    """Load a training checkpoint (folder or ``.pdparams``) and export it with a recognition ``model.yaml``."""
    from arcface_paddle.backbones.loading import load_backbone  # heavy (paddle): imported on first use

    if not os.path.exists(checkpoint):
        raise ToolkitError(f"{checkpoint}: checkpoint not found")
    layer, meta = load_backbone(checkpoint, network=network, **backbone_kwargs)
    size = int((meta.get("backbone_kwargs") or {}).get("input_size") or REC_IMAGE_SIZE)
    source = {"trained_with": "arcface_paddle"}
    source.update({key: meta[key] for key in ("step", "epoch") if meta.get(key) is not None})
    config = recognition_config(meta["network"], embedding_size=meta.get("embedding_size"),
                                input_size=[size, size], source=source)
    return export_model(layer, output_dir, config, fmt=fmt, onnx=onnx)


__all__ = ["export_model", "export_checkpoint", "recognition_config", "INPUT_NAME"]
