"""BlazeFace building blocks with TensorFlow-style "SAME" padding made explicit.

TensorFlow pads SAME convolutions asymmetrically (the extra row/column goes at the end) when the
stride is 2.  The BlazeFace graphs only see even feature maps, so the padding of each layer is a
constant: stride 1 → (k-1)/2 on both sides; stride 2 → total k-2, split floor/ceil (top/left get the
smaller half).  Writing it out as explicit paddings keeps export and oneDNN free of "SAME" guesswork.
"""
from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F


def same_padding(kernel: int, stride: int) -> list:
    """[top, bottom, left, right] matching TF "SAME" for an even input (stride 1 or 2)."""
    total = kernel - 1 if stride == 1 else max(kernel - stride, 0)
    before = total // 2
    after = total - before
    return [before, after, before, after]


def conv(in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> nn.Conv2D:
    return nn.Conv2D(in_ch, out_ch, kernel, stride=stride, padding=same_padding(kernel, stride),
                     groups=groups)


def depthwise(channels: int, stride: int = 1, kernel: int = 3) -> nn.Conv2D:
    return conv(channels, channels, kernel, stride, groups=channels)


class BlazeBlock(nn.Layer):
    """Single (``mid_channels=None``) or double BlazeBlock.

    single: depthwise(stride) → 1×1 conv to ``out``;
    double: depthwise(stride) → 1×1 to ``mid`` → ReLU → depthwise → 1×1 to ``out``.
    The shortcut is the input, 2×2 max-pooled when stride 2 and zero-padded to ``out`` channels;
    the sum goes through a ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, mid_channels=None):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"BlazeBlock stride must be 1 or 2, got {stride}")
        if out_channels < in_channels:
            raise ValueError(f"BlazeBlock cannot shrink channels ({in_channels} → {out_channels})")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.double = mid_channels is not None
        first_out = mid_channels if self.double else out_channels
        self.dw1 = depthwise(in_channels, stride)
        self.pw1 = conv(in_channels, first_out)
        if self.double:
            self.dw2 = depthwise(mid_channels)
            self.pw2 = conv(mid_channels, out_channels)

    @property
    def _pads_by_conv(self) -> bool:
        return "channel_pad_kernel" in self._buffers

    def pad_channels_by_conv(self) -> None:
        """Export-time switch: zero-pad the shortcut's channels with a fixed 1×1 convolution ([I; 0]).

        Same numbers as slice + zeros + concat, but a single conv, which Paddle Inference's oneDNN
        passes fuse with the residual add and ReLU — three non-oneDNN ops (and their layout reorders)
        fewer per block.  The kernel is a constant buffer, not a trainable parameter.
        """
        if self.out_channels > self.in_channels and not self._pads_by_conv:
            kernel = paddle.eye(self.out_channels, self.in_channels, dtype="float32").reshape(
                [self.out_channels, self.in_channels, 1, 1])
            self.register_buffer("channel_pad_kernel", kernel, persistable=True)

    def forward(self, x):
        y = self.pw1(self.dw1(x))
        if self.double:
            y = self.pw2(self.dw2(F.relu(y)))
        shortcut = x
        if self.stride == 2:
            shortcut = F.max_pool2d(shortcut, kernel_size=2, stride=2)
        extra = self.out_channels - self.in_channels
        if extra and self._pads_by_conv:
            shortcut = F.conv2d(shortcut, self.channel_pad_kernel)
        elif extra:
            # zero channels appended, as tflite's PAD.  Not F.pad: Paddle 3.3's legacy exporter maps an
            # 8-value pad list onto the width axis, giving a program with wrong shapes.
            zeros = paddle.zeros_like(shortcut[:, :min(extra, self.in_channels)])
            if extra > self.in_channels:
                zeros = paddle.zeros_like(shortcut[:, :1]).tile([1, extra, 1, 1])
            shortcut = paddle.concat([shortcut, zeros], axis=1)
        return F.relu(y + shortcut)
