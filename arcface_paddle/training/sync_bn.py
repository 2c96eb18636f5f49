"""Synchronised batch norm for multi-process training on CPU (gloo).

Paddle's ``SyncBatchNorm`` has no CPU kernel.  Without synchronisation every process normalises with the
statistics of its own slice of the batch (as the reference and arcface_torch do), so N processes with batch B
train a slightly different model than one process with batch N·B.  :func:`convert_sync_batchnorm` replaces
every ``BatchNorm1D/2D`` with :class:`GlooSyncBatchNorm`, which all-reduces the batch mean and variance,
making the multi-process run equal the single-process one.  The replacement shares the original parameters
and buffers, so state-dict names (and checkpoints) do not change.  On GPU use
``paddle.nn.SyncBatchNorm.convert_sync_batchnorm`` instead.
"""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from arcface_paddle.losses.distributed import AllReduceSumOfParts


class GlooSyncBatchNorm(nn.Layer):
    """Batch norm over the global batch of all processes; wraps (and shares the state of) an existing BN."""

    def __init__(self, bn):
        super().__init__()
        self.weight, self.bias = bn.weight, bn.bias
        self._mean, self._variance = bn._mean, bn._variance
        self._momentum, self._epsilon = float(bn._momentum), float(bn._epsilon)
        self._data_format = getattr(bn, "_data_format", "NCHW")
        if self._data_format not in ("NCHW", "NC", "NCL"):
            raise ValueError(f"GlooSyncBatchNorm supports channel-first data only, got {self._data_format}")

    def forward(self, x):
        if not self.training:
            return F.batch_norm(x, self._mean, self._variance, weight=self.weight, bias=self.bias,
                                training=False, epsilon=self._epsilon)
        axes = [0] + list(range(2, x.ndim))
        shape = [1, -1] + [1] * (x.ndim - 2)
        channels = x.shape[1]
        local_count = paddle.full([1], float(np.prod(x.shape)) / channels, dtype=x.dtype)
        # One all-reduce for the per-channel sums and the element count, a second for the variance:
        # the two-pass variance stays exact where E[x²] − E[x]² would cancel.
        totals = AllReduceSumOfParts.apply(paddle.concat([x.sum(axis=axes), local_count]))
        count = totals[channels:]
        mean = totals[:channels] / count
        centered = x - mean.reshape(shape)
        variance = AllReduceSumOfParts.apply((centered * centered).sum(axis=axes)) / count   # biased, as BN uses
        out = centered * paddle.rsqrt(variance + self._epsilon).reshape(shape)
        with paddle.no_grad():
            m = self._momentum
            self._mean.set_value(self._mean * m + mean.detach() * (1.0 - m))
            self._variance.set_value(self._variance * m + variance.detach() * (1.0 - m))
        return out * self.weight.reshape(shape) + self.bias.reshape(shape)


def convert_sync_batchnorm(layer: nn.Layer) -> nn.Layer:
    """Replace every BatchNorm1D/2D inside ``layer`` (in place) by :class:`GlooSyncBatchNorm`."""
    for name, child in list(layer.named_children()):
        if isinstance(child, (nn.BatchNorm1D, nn.BatchNorm2D)):
            setattr(layer, name, GlooSyncBatchNorm(child))
        else:
            convert_sync_batchnorm(child)
    return layer
