"""Conv → BN (→ PReLU) blocks shared by the MobileFaceNet and iResNet backbones, and the mixed-precision rule.

Mixed precision (AMP) has one switch: the training run's ``fp16``, i.e. the trainer's
``paddle.amp.auto_cast`` around ``backbone(images)`` (GPU only).  Every backbone runs its convolutional body
under that autocast (convolutions in fp16) and its embedding head — flatten → FC → BN1d — inside
``paddle.amp.auto_cast(enable=False)`` on a float32 input, as arcface_torch does: the FC's long dot products
and the embedding BN stay in float32.  No backbone has an fp16 option of its own; outside an autocast
(CPU, export, inference) everything is float32 and an export holds no fp16 casts.
"""
from __future__ import annotations

import paddle
import paddle.nn as nn

from arcface_paddle.core.errors import ToolkitError


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of ``divisor`` (never below it, never >10% under ``value``)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBN(nn.Layer):
    """Bias-free convolution followed by batch norm and, when ``act`` is set, a per-channel PReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 padding: int = 0, groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                              groups=groups, bias_attr=False)
        self.bn = nn.BatchNorm2D(out_channels)
        self.act = nn.PReLU(num_parameters=out_channels) if act else None

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.act(x) if self.act is not None else x


def conv_output_size(size: int, kernel_size: int = 3, stride: int = 2, padding: int = 1) -> int:
    """Spatial size after one convolution (used to size the head for non-112 inputs)."""
    return (size + 2 * padding - kernel_size) // stride + 1


def check_input_size(x, input_size: int, model: str) -> None:
    """The head is sized for ``input_size``; a different (known) spatial size would fail deep inside the FC."""
    height, width = x.shape[-2], x.shape[-1]
    if x.ndim != 4 or (height > 0 and width > 0 and (height, width) != (input_size, input_size)):
        raise ToolkitError(f"{model}: expected input N×3×{input_size}×{input_size}, got {list(x.shape)} "
                           f"(build it with input_size={height} for other sizes)")


def as_float32(x):
    """``x`` in float32 (the head's input under AMP); no cast op at all when it already is (exports stay clean)."""
    return x if x.dtype == paddle.float32 else x.astype("float32")
