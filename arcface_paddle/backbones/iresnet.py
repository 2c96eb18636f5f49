"""Improved ResNets (iResNet18/34/50/100) as used by ArcFace: IR blocks and a BN-dropout-FC-BN head.

IR block: BN → 3×3 conv → BN → PReLU → 3×3 conv (stride) → BN, plus the shortcut (1×1 conv + BN when the
shape changes).  Stem: 3×3 conv 64 (stride 1) → BN → PReLU; four stages of 64/128/256/512 channels (×
``width`` / 64), each starting with stride 2, so a 112×112 input ends as a 7×7 map.  Head: BN → dropout →
flatten → FC → BN (the embedding).

Mixed precision has one switch, the run's ``fp16`` (the trainer's ``paddle.amp.auto_cast``): under it the
convolutional body runs in fp16 and the head (flatten → FC → BN1d) leaves the autocast and runs in float32,
which keeps the large flatten→FC product and the embedding BN numerically safe.  Outside an autocast (CPU,
export, inference) everything is float32.
"""
from __future__ import annotations

from typing import Sequence

import paddle
import paddle.nn as nn

from arcface_paddle.backbones.layers import ConvBN, as_float32, check_input_size, conv_output_size
from arcface_paddle.backbones.registry import BACKBONES

IRESNET_LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3)}


class IRBlock(nn.Layer):
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2D(in_channels)
        self.conv1 = nn.Conv2D(in_channels, out_channels, 3, padding=1, bias_attr=False)
        self.bn2 = nn.BatchNorm2D(out_channels)
        self.prelu = nn.PReLU(num_parameters=out_channels)
        self.conv2 = nn.Conv2D(out_channels, out_channels, 3, stride=stride, padding=1, bias_attr=False)
        self.bn3 = nn.BatchNorm2D(out_channels)
        needs_projection = stride != 1 or in_channels != out_channels
        self.shortcut = ConvBN(in_channels, out_channels, 1, stride=stride, act=False) if needs_projection else None

    def forward(self, x):
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        identity = self.shortcut(x) if self.shortcut is not None else x
        return out + identity


class IResNet(nn.Layer):
    def __init__(self, layers: Sequence[int], embedding_size: int = 512, width: int = 64, input_size: int = 112,
                 dropout: float = 0.0):
        super().__init__()
        if len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"layers must be 4 positive block counts, got {tuple(layers)}")
        self.stem = ConvBN(3, width, 3, padding=1)
        stages, channels, size = [], width, input_size
        for i, count in enumerate(layers):
            out_channels = width * 2 ** i
            blocks = [IRBlock(channels, out_channels, stride=2)]
            blocks += [IRBlock(out_channels, out_channels, stride=1) for _ in range(count - 1)]
            stages.append(nn.Sequential(*blocks))
            channels, size = out_channels, conv_output_size(size)
        self.stages = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2D(channels)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(channels * size * size, embedding_size)
        self.features = nn.BatchNorm1D(embedding_size)
        self.embedding_size = embedding_size
        self.input_size = input_size

    def forward(self, x):
        check_input_size(x, self.input_size, "iResNet")
        x = self.bn(self.stages(self.stem(x)))       # fp16 under the trainer's autocast
        with paddle.amp.auto_cast(enable=False):     # head in float32: see backbones/layers.py
            x = paddle.flatten(self.dropout(as_float32(x)), 1)
            return self.features(self.fc(x))


def _register(depth: int):
    @BACKBONES.register(f"iResNet{depth}")
    def build(embedding_size: int = 512, layers: Sequence[int] | None = None, **kwargs) -> IResNet:
        return IResNet(layers or IRESNET_LAYERS[depth], embedding_size=embedding_size, **kwargs)

    build.__name__ = f"iresnet{depth}"
    build.__doc__ = (f"iResNet{depth} (blocks {IRESNET_LAYERS[depth]}); options: width, input_size, dropout, "
                     "layers (override the block counts for tiny test models).")
    return build


iresnet18, iresnet34, iresnet50, iresnet100 = (_register(d) for d in (18, 34, 50, 100))
