"""Copy the weights of an ONNX chain (:mod:`.onnx_graph`) onto a Paddle network, layer by layer.

The network lists its layers in graph order (``import_order()``: ``("conv" | "bn" | "prelu" | "fc", layer)``).
Walking both lists together, every graph operation must be the kind the network expects, with the same
attributes (kernel, stride, padding, groups) and the same tensor shapes; anything else is a mismatch and
raises :class:`~arcface_paddle.core.errors.ToolkitError` naming the file, the layer and the node.

Layout conversions: Conv weights are OIHW in both (depthwise ``C×1×k×k`` too); Gemm weights become the
``in × out`` matrix of ``paddle.nn.Linear``; PRelu slopes ``C×1×1`` become ``C``.  Exporters differ in
how they write BN, and each form gives an identical eager network:

* Conv → BatchNormalization: copied, with the graph's epsilon folded into the variance when it differs
  from the layer's (``var + eps_graph − eps_layer``), and a conv bias folded into the running mean;
* Conv (with bias) → PRelu, i.e. BN already folded into the conv: our BN becomes the identity plus that bias.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import paddle

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.importers.onnx_graph import ChainOp, OnnxChain


class _Mismatch(Exception):
    """Internal: the reason one layer does not match one node (becomes a ToolkitError with context)."""


def _set(parameter, value: np.ndarray) -> None:
    value = np.ascontiguousarray(value, dtype=np.float32)
    if tuple(parameter.shape) != value.shape:
        raise _Mismatch(f"shape {value.shape} where the layer has {tuple(parameter.shape)}")
    if not np.all(np.isfinite(value)):
        raise _Mismatch("non-finite values")
    parameter.set_value(value)


def _expect(op: Optional[ChainOp], op_type: str) -> ChainOp:
    if op is None:
        raise _Mismatch(f"the graph ended; the network expects {op_type}")
    if op.op_type != op_type:
        raise _Mismatch(f"the network expects {op_type}")
    return op


def _assign_conv(layer: paddle.nn.Conv2D, op: ChainOp) -> Optional[np.ndarray]:
    """Copy a Conv node; returns its bias (to fold into the following BN) or None."""
    attrs = op.attributes
    kernel = list(attrs.get("kernel_shape", op.constants[0].shape[2:]))
    strides = list(attrs.get("strides", [1, 1]))
    dilations = list(attrs.get("dilations", [1, 1]))
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", ""):
        raise _Mismatch(f"auto_pad={attrs['auto_pad']} is not supported; re-export with explicit pads")
    padding = [int(value) for value in layer._updated_padding]      # [height, width], symmetric
    expected = {"kernel": list(layer._kernel_size), "strides": list(layer._stride), "groups": layer._groups,
                "dilations": list(layer._dilation), "pads": padding + padding}   # ONNX: begins, then ends
    found = {"kernel": kernel, "strides": strides, "groups": int(attrs.get("group", 1)), "dilations": dilations,
             "pads": pads}
    for key, value in expected.items():
        if found[key] != value:
            raise _Mismatch(f"{key} {found[key]} where the layer has {value}")
    _set(layer.weight, op.constants[0])
    return op.constants[1] if len(op.constants) > 1 else None


def _assign_bn(layer: paddle.nn.Layer, op: Optional[ChainOp], pending_bias: Optional[np.ndarray],
               after_linear: bool) -> bool:
    """Copy a BatchNormalization node (returns True) or, when BN was folded away, set identity (False)."""
    channels = layer.weight.shape[0]
    bias = np.zeros(channels, np.float32) if pending_bias is None else pending_bias
    if op is not None and op.op_type == "BatchNormalization":
        gamma, beta, mean, var = op.constants[:4]
        epsilon = float(op.attributes.get("epsilon", 1e-5))
        if op.attributes.get("training_mode", 0):
            raise _Mismatch("BatchNormalization in training mode")
        _set(layer.weight, gamma)
        _set(layer.bias, beta)
        _set(layer._mean, mean - bias)
        _set(layer._variance, var + epsilon - layer._epsilon)
        return True
    if not after_linear:
        raise _Mismatch("the network expects BatchNormalization here" if op else "the graph ended; expected BN")
    # Folded BN: y = x + bias exactly (variance chosen so that sqrt(var + eps) == 1).
    _set(layer.weight, np.ones(channels, np.float32))
    _set(layer.bias, np.zeros(channels, np.float32))
    _set(layer._mean, -bias)
    _set(layer._variance, np.full(channels, 1.0 - layer._epsilon, np.float32))
    return False


def _assign_prelu(layer: paddle.nn.PReLU, op: ChainOp) -> None:
    slope = op.constants[0]
    channels = layer._weight.shape[0]
    if slope.size == 1:
        slope = np.full(channels, float(slope.reshape(-1)[0]), np.float32)
    elif slope.size == channels and slope.squeeze().ndim == 1:
        slope = slope.reshape(channels)
    else:
        raise _Mismatch(f"slope shape {tuple(slope.shape)} for a {channels}-channel PReLU")
    _set(layer._weight, slope)


def _assign_fc(layer: paddle.nn.Linear, op: ChainOp) -> None:
    attrs = op.attributes
    if attrs.get("transA", 0) or float(attrs.get("alpha", 1.0)) != 1.0 or float(attrs.get("beta", 1.0)) != 1.0:
        raise _Mismatch("Gemm with transA/alpha/beta other than 0/1/1 is not supported")
    weight = op.constants[0]
    weight = weight.T if attrs.get("transB", 0) else weight      # → in × out, paddle's Linear layout
    _set(layer.weight, weight)
    out_features = layer.weight.shape[1]
    bias = op.constants[1] if len(op.constants) > 1 else np.zeros(out_features, np.float32)
    _set(layer.bias, bias.reshape(-1) if bias.size == out_features else bias)


def assign_chain(chain: OnnxChain, import_order: list, network: str) -> int:
    """Copy every weighted op of ``chain`` onto the layers of ``import_order``; returns ops consumed."""
    ops = chain.ops
    index = 0
    pending_bias: Optional[np.ndarray] = None
    previous_kind = None
    for position, (kind, layer) in enumerate(import_order):
        op = ops[index] if index < len(ops) else None
        try:
            if kind == "conv":
                pending_bias = _assign_conv(layer, _expect(op, "Conv"))
                index += 1
            elif kind == "bn":
                consumed = _assign_bn(layer, op, pending_bias, after_linear=previous_kind in ("conv", "fc"))
                index += int(consumed)
                pending_bias = None
            elif kind == "prelu":
                _assign_prelu(layer, _expect(op, "PRelu"))
                index += 1
            elif kind == "fc":
                _assign_fc(layer, _expect(op, "Gemm"))
                index += 1
            else:
                raise ValueError(f"unknown import kind {kind!r}")
        except _Mismatch as reason:
            node = op.describe() if op is not None else "end of graph"
            raise ToolkitError(f"{chain.path}: graph does not match {network}: layer {position} ({kind}) vs "
                               f"node {node}: {reason}") from None
        previous_kind = kind
    if index != len(ops):
        raise ToolkitError(f"{chain.path}: graph does not match {network}: {len(ops) - index} weighted node(s) "
                           f"left after the network's last layer, starting at {ops[index].describe()}")
    return index
