"""Read an ONNX classifier graph as a plain chain of operations, without running it.

A feed-forward recognizer exported from MXNet / PyTorch is a chain: input scaling (Sub / Mul / Div / Add
by constants), then Conv, BatchNormalization, PRelu ... Gemm, with shape-only nodes (Dropout, Flatten,
Reshape, Identity) in between.  :func:`read_chain` checks that the graph really is such a chain — every
operation reads the previous one's output — and returns:

* the input preprocessing it found, as ``(mean, scale)``: ``program input = (pixel - mean) * scale``;
* the weighted operations in graph order (:class:`ChainOp`: op type, node name, attributes, and its
  constant tensors as numpy arrays).

Anything else (a residual Add between two tensors, Concat, an op we do not know) is refused with a
:class:`~arcface_paddle.core.errors.ToolkitError` naming the file and the node.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from arcface_paddle.core.errors import ToolkitError

WEIGHTED_OPS = ("Conv", "BatchNormalization", "PRelu", "Gemm")
PASS_THROUGH_OPS = ("Dropout", "Flatten", "Reshape", "Identity")
SCALING_OPS = ("Sub", "Mul", "Div", "Add")


@dataclasses.dataclass
class ChainOp:
    op_type: str
    name: str
    attributes: dict[str, Any]
    constants: list[np.ndarray]        # the node's constant inputs (weights), in input order

    def describe(self) -> str:
        shapes = ", ".join(str(tuple(array.shape)) for array in self.constants)
        return f"{self.op_type} {self.name!r} [{shapes}]"


@dataclasses.dataclass
class OnnxChain:
    path: str
    input_name: str
    input_shape: list                  # dims; symbolic dims as strings
    mean: float                        # program input = (pixel - mean) * scale
    scale: float
    ops: list[ChainOp]
    opset: int


def _load_model(path: str):
    import onnx  # optional dependency: only the importer needs it

    if not os.path.isfile(path):
        raise ToolkitError(f"{path}: ONNX file not found")
    try:
        model = onnx.load(path)
    except Exception as error:  # onnx raises DecodeError / RuntimeError for non-ONNX bytes
        raise ToolkitError(f"{path}: not a readable ONNX model ({type(error).__name__})") from None
    if not model.graph.node:
        raise ToolkitError(f"{path}: ONNX graph has no nodes")
    return model


def _constant_tables(model) -> dict[str, np.ndarray]:
    from onnx import numpy_helper  # optional dependency: only the importer needs it

    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    constants[node.output[0]] = numpy_helper.to_array(attribute.t)
    return constants


def _attributes(node) -> dict[str, Any]:
    from onnx import helper  # optional dependency

    values = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        values[attribute.name] = value.decode() if isinstance(value, bytes) else value
    return values


def _scalar(array: np.ndarray, path: str, node_name: str) -> float:
    if array.size != 1:
        raise ToolkitError(f"{path}: node {node_name!r} scales the input by a tensor of shape "
                           f"{tuple(array.shape)}; only per-image scalar scaling is supported")
    return float(array.reshape(-1)[0])


def read_chain(path: str) -> OnnxChain:
    """Parse ``path`` into an :class:`OnnxChain` (see the module docstring); refuse non-chain graphs."""
    model = _load_model(path)
    constants = _constant_tables(model)
    opset = max((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), default=0)
    graph_inputs = [value for value in model.graph.input if value.name not in constants]
    if len(graph_inputs) != 1:
        raise ToolkitError(f"{path}: expected one image input, found {len(graph_inputs)} "
                           f"({', '.join(value.name for value in graph_inputs)})")
    image_input = graph_inputs[0]
    input_shape = [dim.dim_value if dim.HasField("dim_value") else dim.dim_param
                   for dim in image_input.type.tensor_type.shape.dim]

    current = image_input.name          # the one tensor flowing down the chain
    mean, scale = 0.0, 1.0
    ops: list[ChainOp] = []
    for node in model.graph.node:
        name = node.name or (node.output[0] if node.output else node.op_type)
        if node.op_type == "Constant":
            continue
        data_inputs = [value for value in node.input if value and value not in constants]
        if data_inputs != [current]:
            raise ToolkitError(f"{path}: node {node.op_type} {name!r} reads {data_inputs or 'only constants'}, "
                               f"not the previous output {current!r}: the graph is not a plain chain "
                               f"(branches/residual connections are not part of this network)")
        if node.input[0] != current:
            raise ToolkitError(f"{path}: node {node.op_type} {name!r} takes the data tensor in an unexpected slot")
        node_constants = [constants[value] for value in node.input[1:] if value]
        if node.op_type in SCALING_OPS:
            if ops:
                raise ToolkitError(f"{path}: node {node.op_type} {name!r} after the first weighted layer; "
                                   f"only input scaling may use {node.op_type}")
            value = _scalar(node_constants[0], path, name)
            if node.op_type == "Sub":
                mean += value / scale
            elif node.op_type == "Add":
                mean -= value / scale
            elif node.op_type == "Mul":
                scale *= value
            else:
                scale /= value
        elif node.op_type in WEIGHTED_OPS:
            ops.append(ChainOp(node.op_type, name, _attributes(node), node_constants))
        elif node.op_type not in PASS_THROUGH_OPS:
            raise ToolkitError(f"{path}: unsupported ONNX op {node.op_type} at node {name!r}")
        current = node.output[0]
    if scale == 0:
        raise ToolkitError(f"{path}: input scaling multiplies by zero")
    outputs = [value.name for value in model.graph.output]
    if outputs != [current]:
        raise ToolkitError(f"{path}: graph outputs {outputs} are not the end of the chain {current!r}")
    return OnnxChain(path=path, input_name=image_input.name, input_shape=input_shape, mean=mean, scale=scale,
                     ops=ops, opset=opset)
