"""Export a BlazeFace network as a Paddle inference model with decoding inside the program.

The exported program takes the letterboxed, normalised input (N×3×S×S float32 RGB in [-1, 1]; the
``model.yaml`` states mean/std) and returns, per anchor, decoded ``boxes`` N×A×4 (x1, y1, x2, y2),
``keypoints`` N×A×6×2 — both normalised to the network input — and ``scores`` N×A (sigmoid of the
clipped logits).  Anchors are a constant inside the parameters file; decoding uses plain ops only,
so the program also converts to ONNX (``onnx=True``; the tests compare onnxruntime with it).

Non-maximum suppression runs *beside* the program, in numpy (:mod:`blazeface_paddle.nms`), because
the default is MediaPipe's weighted NMS (overlapping detections are blended, score-weighted), which
no Paddle/ONNX NMS op implements; after the score threshold only a handful of candidates remain, so
numpy costs microseconds.

The legacy ``.pdmodel`` format needs ``FLAGS_enable_pir_api=0`` before Paddle is imported, so the
program is traced in a fresh Python process (``python -m blazeface_paddle.export``); that also makes
exports byte-for-byte reproducible (parameter names do not depend on what the caller built before).
"""
from __future__ import annotations

import argparse
import copy
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import paddle
import paddle.nn as nn

from arcface_paddle.errors import ToolkitError, run_cli
from arcface_paddle.model_config import (MODEL_CONFIG_NAME, PARAMS_NAME, PROGRAM_NAMES, ModelConfig,
                                         params_fingerprint, save_model_config)

from .anchors import anchors_for
from .blocks import BlazeBlock
from .model import BlazeFace
from .variants import KEYPOINT_NAMES, NUM_COORDS, get_variant

NETWORK_NAME = "BlazeFace"
INPUT_MEAN = [127.5, 127.5, 127.5]        # program input = (pixel - 127.5) / 127.5 ∈ [-1, 1], as MediaPipe
INPUT_STD = [127.5, 127.5, 127.5]
OUTPUT_NAMES = ("boxes", "keypoints", "scores")


def decoding_affine(anchors: np.ndarray, input_size: float) -> tuple:
    """Decoding as one affine map per anchor: ``decoded = (raw * scale) @ mix + offset``.

    ``raw`` is the 16-vector [dx, dy, w, h, k0x, k0y, ...]; ``decoded`` is [x1, y1, x2, y2, k0x, k0y, ...]
    normalised.  ``scale`` (A×16) holds anchor size / input size per coordinate, ``mix`` (16×16) turns
    centre/size into corners (x1 = dx − w/2 …) and copies keypoints, ``offset`` (A×16) adds the anchor
    centre.  Same numbers as :func:`blazeface_paddle.postprocess.decode`, in two or three ops.
    """
    anchors = np.asarray(anchors, np.float32)
    num_points = (NUM_COORDS - 4) // 2
    size_x, size_y = anchors[:, 2:3] / input_size, anchors[:, 3:4] / input_size
    scale = np.concatenate([size_x, size_y, size_x, size_y] + [size_x, size_y] * num_points, axis=1)
    mix = np.eye(NUM_COORDS, dtype=np.float32)
    mix[:4, :4] = [[1, 0, 1, 0], [0, 1, 0, 1], [-0.5, 0, 0.5, 0], [0, -0.5, 0, 0.5]]   # rows: dx, dy, w, h
    offset = np.tile(anchors[:, :2], (1, NUM_COORDS // 2))
    return scale.astype(np.float32), mix, offset.astype(np.float32)


class DecodingBlazeFace(nn.Layer):
    """BlazeFace + anchor decoding + score sigmoid, as one exportable layer (the network is copied).

    Decoding is linear in the regressor outputs, and with MediaPipe's fixed-size anchors the linear
    part (``mix`` scaled by 1 / input size) is the same for every anchor, so it is folded into the
    regressor heads' 1×1 convolutions; what remains is one add of the anchor centres.  Fewer ops is
    what makes a network this small fast in Paddle Inference.
    """

    def __init__(self, network: BlazeFace):
        super().__init__()
        self.network = copy.deepcopy(network)
        for block in self.network.sublayers():
            if isinstance(block, BlazeBlock):
                block.pad_channels_by_conv()
        spec = self.network.variant
        scale, mix, offset = decoding_affine(anchors_for(spec), float(spec.input_size))
        if not np.all(scale == scale[0, 0]):
            raise ToolkitError(f"BlazeFace {spec.name}: export needs fixed-size anchors (fixed_anchor_size: true)")
        linear = (mix * scale[0, 0]).T               # decoded = linear @ raw, per anchor
        self.regressors = nn.LayerList()
        for head in self.network.regressors:
            weight = head.weight.numpy()            # [anchors_per_cell * 16, C, 1, 1]
            bias = head.bias.numpy()
            per_cell = weight.shape[0] // NUM_COORDS
            folded = copy.deepcopy(head)
            w = weight.reshape(per_cell, NUM_COORDS, -1)
            folded.weight.set_value(np.einsum("ij,kjc->kic", linear, w).reshape(weight.shape).astype(np.float32))
            folded.bias.set_value(np.einsum("ij,kj->ki", linear, bias.reshape(per_cell, NUM_COORDS))
                                  .reshape(bias.shape).astype(np.float32))
            self.regressors.append(folded)
        self.register_buffer("anchor_offset", paddle.to_tensor(offset[None]), persistable=True)
        self.score_clipping = float(spec.score_clipping)

    def forward(self, x):
        features = self.network.features(x)
        decoded, logits = [], []
        for feature, classifier, regressor in zip(features, self.network.classifiers, self.regressors):
            logits.append(classifier(feature).transpose([0, 2, 3, 1]).reshape([0, -1]))
            decoded.append(regressor(feature).transpose([0, 2, 3, 1]).reshape([0, -1, NUM_COORDS]))
        decoded = (decoded[0] if len(decoded) == 1 else paddle.concat(decoded, axis=1)) + self.anchor_offset
        logits = logits[0] if len(logits) == 1 else paddle.concat(logits, axis=1)
        boxes = decoded[:, :, 0:4]
        keypoints = decoded[:, :, 4:NUM_COORDS].reshape([0, 0, -1, 2])
        clipped = paddle.clip(logits, -self.score_clipping, self.score_clipping)
        # sigmoid(x) == softmax([x, 0])[0]; written so because Paddle 3.3's legacy (.pdmodel) tracer has
        # no static path for sigmoid/exp/tanh/matmul, while softmax/stack trace in both formats.
        pair = paddle.stack([clipped, paddle.zeros_like(clipped)], axis=-1)
        scores = paddle.nn.functional.softmax(pair, axis=-1)[:, :, 0]
        return boxes, keypoints, scores


def detector_section(variant, score_threshold=None, nms_threshold=None) -> dict:
    """The ``detector:`` block of ``model.yaml``: everything the predictor needs besides the program."""
    spec = get_variant(variant)
    return {
        "variant": spec.name,
        "outputs": list(OUTPUT_NAMES),
        "decoded_in_program": True,
        "coordinates": "normalised to the letterboxed network input",
        "num_anchors": int(anchors_for(spec).shape[0]),
        "anchors": dict(spec.anchor_options),
        "score_clipping": float(spec.score_clipping),
        "score_threshold": float(spec.score_threshold if score_threshold is None else score_threshold),
        "nms": "weighted",
        "nms_threshold": float(spec.nms_threshold if nms_threshold is None else nms_threshold),
        "keypoint_names": list(KEYPOINT_NAMES),
        "resize": "letterbox (aspect kept, centred, black padding)",
    }


def _trace_and_save(variant: str, weights_path: str, output_prefix: str) -> None:
    """Runs in the child process: rebuild the layer, load the weights, trace, save."""
    network = BlazeFace(variant)
    network.set_state_dict(paddle.load(weights_path))
    layer = DecodingBlazeFace(network)
    layer.eval()
    size = network.variant.input_size
    spec = [paddle.static.InputSpec([None, 3, size, size], "float32", "image")]
    static = paddle.jit.to_static(layer, input_spec=spec, full_graph=True)
    paddle.jit.save(static, output_prefix, input_spec=spec)
    if os.path.isfile(output_prefix + ".pdmodel"):
        _tidy_legacy_program(output_prefix + ".pdmodel")


def _tidy_legacy_program(program_path: str) -> None:
    """Two rewrites of the saved legacy program, both output-preserving (the parity tests check):

    * drop the Python call stacks (absolute source paths) stored on every op, so the program is the
      same file wherever the toolkit is installed;
    * fold "reshape2(bias → 1×C×1×1) + elementwise_add(axis=-1)" back into the classic
      "elementwise_add(Y=bias, axis=1)".  Paddle 3.3's tracer emits the first form, which oneDNN's
      conv+bias fusion refuses ("Check the Attr(axis) ... failed"), leaving every convolution, bias,
      ReLU and residual add as separate ops; with the classic form they fuse into one conv each.
    """
    from paddle.base.proto import framework_pb2

    desc = framework_pb2.ProgramDesc()
    with open(program_path, "rb") as handle:
        desc.ParseFromString(handle.read())
    for block in desc.blocks:
        for op in block.ops:
            attrs = [attr for attr in op.attrs if attr.name != "op_callstack"]
            del op.attrs[:]
            op.attrs.extend(attrs)
        _fold_bias_reshapes(block)
    with open(program_path, "wb") as handle:
        handle.write(desc.SerializeToString(deterministic=True))


def _argument(op, parameter: str, outputs: bool = False) -> list:
    for slot in (op.outputs if outputs else op.inputs):
        if slot.parameter == parameter:
            return slot.arguments
    return []


def _fold_bias_reshapes(block) -> None:
    persistable = {var.name for var in block.vars if var.persistable}
    consumers = {}
    for op in block.ops:
        for slot in op.inputs:
            for name in slot.arguments:
                consumers.setdefault(name, []).append(op)
    folded, dropped_vars = [], set()
    for op in block.ops:
        if op.type != "reshape2":
            continue
        source = list(_argument(op, "X"))
        out = list(_argument(op, "Out", outputs=True))
        users = consumers.get(out[0], []) if out else []
        if (len(source) != 1 or source[0] not in persistable or not users
                or any(user.type != "elementwise_add" or list(_argument(user, "Y")) != out for user in users)):
            continue
        for user in users:
            _argument(user, "Y")[0] = source[0]
            for attr in user.attrs:
                if attr.name == "axis":
                    attr.i = 1
        folded.append(op)
        dropped_vars.update(out + list(_argument(op, "XShape", outputs=True)))
    for op in folded:
        block.ops.remove(op)
    for var in [var for var in block.vars if var.name in dropped_vars]:
        block.vars.remove(var)


def export_detector(network: BlazeFace, output_dir: str, *, fmt: str = "legacy", source: dict | None = None,
                    score_threshold: float | None = None, onnx: bool = False) -> ModelConfig:
    """Write ``output_dir/{inference.pdmodel|inference.json, inference.pdiparams, model.yaml}``.

    ``onnx=True`` also writes ``inference.onnx`` (paddle2onnx, opset 11; same three outputs).  Files are
    built in a temporary folder beside ``output_dir`` and moved in with ``model.yaml`` last, so a failed
    export leaves an existing model untouched and a folder with a ``model.yaml`` is always complete.
    """
    from arcface_paddle.inference.export import ONNX_NAME, export_onnx

    if fmt not in PROGRAM_NAMES:
        raise ToolkitError(f"export format must be one of {sorted(PROGRAM_NAMES)}, got {fmt!r}")
    spec = network.variant
    output_dir = os.path.abspath(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ToolkitError(f"{output_dir}: exists and is not a folder")
    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        weights = os.path.join(work, "weights.pdparams")
        paddle.save(network.state_dict(), weights)
        env = dict(os.environ, FLAGS_enable_pir_api="0" if fmt == "legacy" else "1")
        env.setdefault("OMP_NUM_THREADS", "2")
        command = [sys.executable, "-m", "blazeface_paddle.export", "--variant", spec.name,
                   "--weights", weights, "--prefix", os.path.join(work, "inference")]
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        program = os.path.join(work, PROGRAM_NAMES[fmt])
        if result.returncode != 0 or not os.path.isfile(program):
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ToolkitError(f"{output_dir}: export failed ({tail[0]})")
        produced = [PROGRAM_NAMES[fmt], PARAMS_NAME]
        if onnx:
            export_onnx(program, os.path.join(work, PARAMS_NAME), os.path.join(work, ONNX_NAME))
            produced.append(ONNX_NAME)
        config = ModelConfig(task="detection", network=NETWORK_NAME, input_size=[spec.input_size] * 2,
                             color_order="RGB", mean=list(INPUT_MEAN), std=list(INPUT_STD), format=fmt,
                             detector=detector_section(spec, score_threshold), source=source)
        config.model_id = params_fingerprint(os.path.join(work, PARAMS_NAME))
        save_model_config(work, config)
        os.makedirs(output_dir, exist_ok=True)
        owned = [*PROGRAM_NAMES.values(), PARAMS_NAME, ONNX_NAME, MODEL_CONFIG_NAME]
        for name in owned:           # an earlier export's files would contradict the new model.yaml
            if name not in produced and os.path.exists(os.path.join(output_dir, name)):
                os.unlink(os.path.join(output_dir, name))
        for name in produced + [MODEL_CONFIG_NAME]:
            os.replace(os.path.join(work, name), os.path.join(output_dir, name))
        return config
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="internal: trace a BlazeFace for export (see export_detector)")
    parser.add_argument("--variant", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--prefix", required=True)
    args = parser.parse_args()
    paddle.set_device("cpu")
    _trace_and_save(variant=args.variant, weights_path=args.weights, output_prefix=args.prefix)
    return 0


if __name__ == "__main__":
    run_cli(main)
