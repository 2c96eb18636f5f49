"""Export a BlazeFace network as a Paddle inference model with decoding inside the program.

The exported program takes the letterboxed, normalised input (N×3×S×S float32 RGB in [-1, 1]; the
``model.yaml`` states mean/std) and returns, per anchor, decoded ``boxes`` N×A×4 (x1, y1, x2, y2),
``keypoints`` N×A×6×2 — both normalised to the network input — and ``scores`` N×A (sigmoid of the
clipped logits).  Anchors are a constant inside the parameters file; decoding uses plain ops only,
so the program also converts to ONNX (``onnx=True``; the tests compare onnxruntime with it).

Non-maximum suppression runs *beside* the program, in numpy (:mod:`blazeface_paddle.inference.nms`), because
the default is MediaPipe's weighted NMS (overlapping detections are blended, score-weighted), which
no Paddle/ONNX NMS op implements; after the score threshold only a handful of candidates remain, so
numpy costs microseconds.

The legacy ``.pdmodel`` format needs ``FLAGS_enable_pir_api=0`` before Paddle is imported, so the
program is traced in a fresh Python process (``python -m blazeface_paddle.conversion.export``); that also makes
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

from arcface_paddle.core.errors import ToolkitError, run_cli
from arcface_paddle.core.model_yaml import (
    PARAMS_NAME,
    PROGRAM_NAMES,
    ModelConfig,
    params_fingerprint,
    save_model_config,
)
from arcface_paddle.core.program_export import ONNX_NAME, check_export_folder, export_onnx, move_export_into_place
from blazeface_paddle.conversion.program_tidy import tidy_legacy_program
from blazeface_paddle.network.anchors import anchors_for
from blazeface_paddle.network.blocks import BlazeBlock
from blazeface_paddle.network.model import BlazeFace
from blazeface_paddle.network.variants import INPUT_MEAN, INPUT_STD, KEYPOINT_NAMES, NUM_COORDS, get_variant

NETWORK_NAME = "BlazeFace"
OUTPUT_NAMES = ("boxes", "keypoints", "scores")


def decoding_affine(anchors: np.ndarray, input_size: float) -> tuple:
    """Decoding as one affine map per anchor: ``decoded = (raw * scale) @ mix + offset``.

    ``raw`` is the 16-vector [dx, dy, w, h, k0x, k0y, ...]; ``decoded`` is [x1, y1, x2, y2, k0x, k0y, ...]
    normalised.  ``scale`` (A×16) holds anchor size / input size per coordinate, ``mix`` (16×16) turns
    centre/size into corners (x1 = dx − w/2 …) and copies keypoints, ``offset`` (A×16) adds the anchor
    centre.  Same numbers as :func:`blazeface_paddle.network.decode.decode`, in two or three ops.
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
        # each scale's classifier and (decoding-folded) regressor 1×1 convolutions become one convolution
        # whose channels are, per anchor, [16 decoded coordinates, 1 score logit]: one conv + transpose +
        # reshape per scale instead of two, and one concat for all outputs
        self.heads = nn.LayerList()
        for classifier, head in zip(self.network.classifiers, self.network.regressors):
            weight, bias = head.weight.numpy(), head.bias.numpy()      # [anchors_per_cell * 16, C, 1, 1]
            per_cell, channels = weight.shape[0] // NUM_COORDS, weight.shape[1]
            if (list(weight.shape[2:]) != [1, 1] or list(classifier.weight.shape) != [per_cell, channels, 1, 1]
                    or head._stride != classifier._stride or head._padding != classifier._padding):
                raise ToolkitError(f"BlazeFace {spec.name}: export expects 1×1 classifier/regressor heads")
            folded_w = np.einsum("ij,kjc->kic", linear, weight.reshape(per_cell, NUM_COORDS, channels))
            folded_b = np.einsum("ij,kj->ki", linear, bias.reshape(per_cell, NUM_COORDS))
            cls_w = classifier.weight.numpy().reshape(per_cell, 1, channels)
            cls_b = classifier.bias.numpy().reshape(per_cell, 1)
            merged = nn.Conv2D(channels, per_cell * (NUM_COORDS + 1), 1)
            merged.weight.set_value(np.concatenate([folded_w, cls_w], axis=1)
                                    .reshape(per_cell * (NUM_COORDS + 1), channels, 1, 1).astype(np.float32))
            merged.bias.set_value(np.concatenate([folded_b, cls_b], axis=1).reshape(-1).astype(np.float32))
            self.heads.append(merged)
        offset = np.concatenate([offset, np.zeros((offset.shape[0], 1), np.float32)], axis=1)  # + 0 to logits
        self.register_buffer("anchor_offset", paddle.to_tensor(offset[None]), persistable=True)
        self.score_clipping = float(spec.score_clipping)

    def forward(self, x):
        per_anchor = [head(feature).transpose([0, 2, 3, 1]).reshape([0, -1, NUM_COORDS + 1])
                      for feature, head in zip(self.network.features(x), self.heads)]
        merged = (per_anchor[0] if len(per_anchor) == 1 else paddle.concat(per_anchor, axis=1)) + self.anchor_offset
        boxes = merged[:, :, 0:4]
        keypoints = merged[:, :, 4:NUM_COORDS].reshape([0, 0, -1, 2])
        logits = merged[:, :, NUM_COORDS]
        clipped = paddle.clip(logits, -self.score_clipping, self.score_clipping)
        # sigmoid(x) == softmax([x, 0])[0]; written so because Paddle 3.3's legacy (.pdmodel) tracer has
        # no static path for sigmoid/exp/tanh/matmul, while softmax/stack trace in both formats.  The
        # legacy export turns the four ops back into one sigmoid (_fold_softmax_sigmoid).
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
        tidy_legacy_program(output_prefix + ".pdmodel")


def export_detector(network: BlazeFace, output_dir: str, *, fmt: str = "legacy", source: dict | None = None,
                    score_threshold: float | None = None, onnx: bool = False) -> ModelConfig:
    """Write ``output_dir/{inference.pdmodel|inference.json, inference.pdiparams, model.yaml}``.

    ``onnx=True`` also writes ``inference.onnx`` (paddle2onnx, opset 11; same three outputs).  Files are
    built in a temporary folder beside ``output_dir`` and moved in with ``model.yaml`` last, so a failed
    export leaves an existing model untouched and a folder with a ``model.yaml`` is always complete.
    """
    if fmt not in PROGRAM_NAMES:
        raise ToolkitError(f"export format must be one of {sorted(PROGRAM_NAMES)}, got {fmt!r}")
    spec = network.variant
    output_dir = os.path.abspath(output_dir)
    check_export_folder(output_dir)
    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        weights = os.path.join(work, "weights.pdparams")
        paddle.save(network.state_dict(), weights)
        staging = os.path.join(work, "model")
        os.makedirs(staging)
        env = dict(os.environ, FLAGS_enable_pir_api="0" if fmt == "legacy" else "1")
        env.setdefault("OMP_NUM_THREADS", "2")
        command = [sys.executable, "-m", "blazeface_paddle.conversion.export", "--variant", spec.name,
                   "--weights", weights, "--prefix", os.path.join(staging, "inference")]
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        program = os.path.join(staging, PROGRAM_NAMES[fmt])
        if result.returncode != 0 or not os.path.isfile(program):
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ToolkitError(f"{output_dir}: export failed ({tail[0]})")
        for name in os.listdir(staging):          # e.g. the pickled name map only paddle.jit.load wants
            if name not in (PROGRAM_NAMES[fmt], PARAMS_NAME):
                os.unlink(os.path.join(staging, name))
        if onnx:
            export_onnx(program, os.path.join(staging, PARAMS_NAME), os.path.join(staging, ONNX_NAME))
        config = ModelConfig(task="detection", network=NETWORK_NAME, input_size=[spec.input_size] * 2,
                             color_order="RGB", mean=list(INPUT_MEAN), std=list(INPUT_STD), format=fmt,
                             detector=detector_section(spec, score_threshold), source=source)
        config.model_id = params_fingerprint(os.path.join(staging, PARAMS_NAME))
        save_model_config(staging, config)
        move_export_into_place(staging, output_dir)
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
