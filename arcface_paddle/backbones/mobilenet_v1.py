"""MobileNetV1 face backbone in the InsightFace layout — the network of OpenCV's open SFace weights.

Layout (channels at ``width_mult=1``, input 112×112 normalised as ``(x - 127.5) / 128``):

    stem     3×3 conv 32, stride 1, BN, PReLU
    body     13 depthwise/pointwise pairs (3×3 depthwise conv + BN + PReLU, then 1×1 conv + BN + PReLU):
             64/s1, 128/s2, 128/s1, 256/s2, 256/s1, 512/s2, 512/s1 ×5, 1024/s2, 1024/s1   → 1024 × 7 × 7
    head     BN → dropout → flatten → FC (embedding_size) → BN

The stem keeps full resolution (stride 1), four stride-2 pairs bring 112 to 7.  Convolutions have no bias
(BN follows each); the body's BNs use eps 1e-3 and the head's 2e-5, as in the MXNet original, so imported
weights reproduce it exactly.  ``tools/import_pretrained.py`` maps the ONNX graph onto
:meth:`MobileNetV1.import_order`.
"""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn

from arcface_paddle.backbones.layers import as_float32, check_input_size
from arcface_paddle.backbones.registry import BACKBONES
from arcface_paddle.core.errors import ToolkitError

BODY_BN_EPSILON = 1e-3
HEAD_BN_EPSILON = 2e-5
STEM_CHANNELS = 32
# (output channels of the pointwise conv, stride of the depthwise conv) for each of the 13 pairs.
PAIRS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
         (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
TOTAL_STRIDE = 16


def scaled_channels(channels: int, width_mult: float) -> int:
    """Channels of a layer at ``width_mult`` (at least 4, so tiny test models stay valid)."""
    return max(4, int(round(channels * width_mult)))


class ConvBNPReLU(nn.Layer):
    """Conv (no bias) → BN → per-channel PReLU; ``groups == in_channels`` makes it depthwise."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2D(in_channels, out_channels, kernel_size, stride=stride,
                              padding=kernel_size // 2, groups=groups, bias_attr=False)
        self.bn = nn.BatchNorm2D(out_channels, momentum=0.9, epsilon=BODY_BN_EPSILON)
        self.prelu = nn.PReLU(num_parameters=out_channels, init=0.25)

    def forward(self, x):
        return self.prelu(self.bn(self.conv(x)))


class DepthwiseSeparable(nn.Layer):
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.depthwise = ConvBNPReLU(in_channels, in_channels, 3, stride=stride, groups=in_channels)
        self.pointwise = ConvBNPReLU(in_channels, out_channels, 1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


@BACKBONES.register("MobileNetV1")
class MobileNetV1(nn.Layer):
    """MobileNetV1 face recognizer.

    Args:
        embedding_size: output feature size (SFace: 128).
        width_mult: channel multiplier (1.0 = SFace; e.g. 0.125 for tiny CPU tests).
        dropout: dropout probability before the FC layer (the original uses 0.4).
        input_size: square input side in pixels, a multiple of 16 (112 for real faces; tests may use 32).
        fused_head: the inference form made by :meth:`fused_for_inference` — both head BNs folded into the FC
            (same outputs in eval mode, ~9% less CPU time per face in Paddle Inference at batch 1).
    """

    def __init__(self, embedding_size: int = 128, width_mult: float = 1.0, dropout: float = 0.4,
                 input_size: int = 112, fused_head: bool = False):
        super().__init__()
        if input_size < TOTAL_STRIDE or input_size % TOTAL_STRIDE:
            raise ToolkitError(f"MobileNetV1 input_size must be a multiple of {TOTAL_STRIDE}, got {input_size}")
        if not 0 < width_mult <= 4:
            raise ToolkitError(f"MobileNetV1 width_mult must be in (0, 4], got {width_mult}")
        if not 0 <= dropout < 1:
            raise ToolkitError(f"MobileNetV1 dropout must be in [0, 1), got {dropout}")
        self.embedding_size = embedding_size
        self.input_size = input_size
        channels = scaled_channels(STEM_CHANNELS, width_mult)
        self.stem = ConvBNPReLU(3, channels, 3)
        pairs = []
        for out_channels, stride in PAIRS:
            out_channels = scaled_channels(out_channels, width_mult)
            pairs.append(DepthwiseSeparable(channels, out_channels, stride))
            channels = out_channels
        self.body = nn.Sequential(*pairs)
        side = input_size // TOTAL_STRIDE
        self.fused_head = fused_head
        self.options = {"embedding_size": embedding_size, "width_mult": width_mult, "dropout": dropout,
                        "input_size": input_size}
        if not fused_head:
            self.head_bn = nn.BatchNorm2D(channels, momentum=0.9, epsilon=HEAD_BN_EPSILON)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(channels * side * side, embedding_size)
        if not fused_head:
            self.features = nn.BatchNorm1D(embedding_size, momentum=0.9, epsilon=HEAD_BN_EPSILON)

    def forward(self, x):
        check_input_size(x, self.input_size, "MobileNetV1")  # static shapes only: export-safe
        x = self.body(self.stem(x))                        # fp16 under the trainer's autocast
        if not self.fused_head:
            x = self.head_bn(x)
        with paddle.amp.auto_cast(enable=False):          # head in float32: see backbones/layers.py
            x = paddle.flatten(self.dropout(as_float32(x)), start_axis=1)
            return self.fc(x) if self.fused_head else self.features(self.fc(x))

    def fused_for_inference(self) -> "MobileNetV1":
        """A new eval-mode copy with head BN → FC → BN folded into one FC (exact up to float rounding).

        BN in eval mode is ``x·s + t`` per channel; the FC input is the flattened ``C×7×7`` map (channel-major),
        so the head BN scales FC rows channel by channel and the feature BN scales its columns.
        """
        if self.fused_head:
            raise ValueError("this MobileNetV1 head is already fused")
        fused = MobileNetV1(**dict(self.options, fused_head=True))
        own = self.state_dict()
        fused.set_state_dict({name: value for name, value in own.items()
                              if not name.startswith(("head_bn.", "features.", "fc."))})

        def scale_shift(bn):
            scale = bn.weight.numpy().astype(np.float64) / np.sqrt(bn._variance.numpy().astype(np.float64)
                                                                    + bn._epsilon)
            return scale, bn.bias.numpy() - bn._mean.numpy() * scale

        head_scale, head_shift = scale_shift(self.head_bn)
        repeat = self.fc.weight.shape[0] // head_scale.shape[0]        # 7×7 positions per channel
        head_scale, head_shift = np.repeat(head_scale, repeat), np.repeat(head_shift, repeat)
        weight, bias = self.fc.weight.numpy().astype(np.float64), self.fc.bias.numpy().astype(np.float64)
        bias = bias + head_shift @ weight
        weight = weight * head_scale[:, None]
        feature_scale, feature_shift = scale_shift(self.features)
        fused.fc.weight.set_value((weight * feature_scale[None, :]).astype(np.float32))
        fused.fc.bias.set_value((bias * feature_scale + feature_shift).astype(np.float32))
        fused.eval()
        return fused

    def import_order(self) -> list[tuple[str, nn.Layer]]:
        """Layers in graph order as ``(kind, layer)``: kind is conv / bn / prelu / fc.

        This is the order the importer walks an ONNX graph in; each entry consumes one graph node.
        """
        if self.fused_head:
            raise ValueError("import into an unfused MobileNetV1 (fused_head=False), then fuse")
        order: list[tuple[str, nn.Layer]] = []

        def add_block(block: ConvBNPReLU):
            order.extend([("conv", block.conv), ("bn", block.bn), ("prelu", block.prelu)])

        add_block(self.stem)
        for pair in self.body:
            add_block(pair.depthwise)
            add_block(pair.pointwise)
        order.extend([("bn", self.head_bn), ("fc", self.fc), ("bn", self.features)])  # dropout: no weights
        return order
