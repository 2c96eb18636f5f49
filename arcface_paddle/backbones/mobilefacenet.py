"""MobileFaceNet (Chen et al., 2018): inverted-residual bottlenecks and a global depthwise conv head.

Layout at 112×112 input (channels × ``width_mult``)::

    3×3 s2 conv 64 → 3×3 depthwise conv 64
    bottlenecks (t, c, n, s) = (2,64,5,2) (4,128,1,2) (2,128,6,1) (4,128,1,2) (2,128,2,1)
    1×1 conv 512 → global depthwise conv over the final 7×7 map (linear) → linear 512→D → BN

Every conv is followed by BN and a per-channel PReLU except the bottleneck projections and the GDC
(linear, as in the paper).  ``input_size`` sizes the GDC kernel so tiny test inputs (56, 64) work;
``blocks`` overrides n per stage for tiny test models.
"""
from __future__ import annotations

from typing import Sequence

import paddle
import paddle.nn as nn

from arcface_paddle.backbones.layers import ConvBN, as_float32, check_input_size, conv_output_size, make_divisible
from arcface_paddle.backbones.registry import BACKBONES

# (expansion t, output channels c, repeats n, stride of the first repeat s)
MOBILEFACENET_STAGES = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


class Bottleneck(nn.Layer):
    """1×1 expand (PReLU) → 3×3 depthwise (PReLU, stride) → 1×1 linear projection, residual if shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, expansion: int, stride: int):
        super().__init__()
        hidden = in_channels * expansion
        self.expand = ConvBN(in_channels, hidden, 1)
        self.depthwise = ConvBN(hidden, hidden, 3, stride=stride, padding=1, groups=hidden)
        self.project = ConvBN(hidden, out_channels, 1, act=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x):
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


class MobileFaceNet(nn.Layer):
    def __init__(self, embedding_size: int = 128, width_mult: float = 1.0, input_size: int = 112,
                 blocks: Sequence[int] | None = None, feature_channels: int = 512):
        super().__init__()
        blocks = tuple(blocks) if blocks is not None else tuple(s[2] for s in MOBILEFACENET_STAGES)
        if len(blocks) != len(MOBILEFACENET_STAGES) or min(blocks) < 1:
            raise ValueError(f"blocks must be {len(MOBILEFACENET_STAGES)} positive repeat counts, got {blocks}")
        width = lambda c: make_divisible(c * width_mult)  # noqa: E731
        stem = width(64)
        self.stem = nn.Sequential(ConvBN(3, stem, 3, stride=2, padding=1),
                                  ConvBN(stem, stem, 3, padding=1, groups=stem))
        size = conv_output_size(input_size)
        layers, channels = [], stem
        for (t, c, _, s), n in zip(MOBILEFACENET_STAGES, blocks):
            for i in range(n):
                stride = s if i == 0 else 1
                layers.append(Bottleneck(channels, width(c), t, stride))
                channels = width(c)
                if stride == 2:
                    size = conv_output_size(size)
        self.stages = nn.Sequential(*layers)
        features = width(feature_channels)
        self.conv_sep = ConvBN(channels, features, 1)
        # Global depthwise conv: one learned spatial weighting per channel instead of average pooling.
        self.gdc = ConvBN(features, features, size, groups=features, act=False)
        self.fc = nn.Linear(features, embedding_size, bias_attr=False)
        self.features = nn.BatchNorm1D(embedding_size)
        self.embedding_size = embedding_size
        self.input_size = input_size

    def forward(self, x):
        check_input_size(x, self.input_size, "MobileFaceNet")
        x = self.gdc(self.conv_sep(self.stages(self.stem(x))))   # fp16 under the trainer's autocast
        with paddle.amp.auto_cast(enable=False):                  # head in float32: see backbones/layers.py
            return self.features(self.fc(paddle.flatten(as_float32(x), 1)))


@BACKBONES.register("MobileFaceNet_128")
def mobilefacenet_128(embedding_size: int = 128, **kwargs) -> MobileFaceNet:
    """MobileFaceNet with a 128-d embedding (options: width_mult, input_size, blocks, feature_channels)."""
    return MobileFaceNet(embedding_size=embedding_size, **kwargs)
