"""MobileNetV1 (the SFace layout): shapes, options, and that a tiny version learns on CPU."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from arcface_paddle.backbones import BACKBONES, get_model
from arcface_paddle.core.errors import ToolkitError


def test_full_size_layout_matches_sface():
    paddle.set_device("cpu")
    layer = get_model("MobileNetV1")
    layer.eval()
    assert "MobileNetV1" in BACKBONES
    # SFace: 1024 channels × 7 × 7 into a 128-d FC; 13 depthwise/pointwise pairs after a stride-1 stem.
    assert list(layer.fc.weight.shape) == [1024 * 7 * 7, 128]
    assert len(layer.body) == 13 and layer.stem.conv._stride == [1, 1]
    assert [pair.depthwise.conv._groups for pair in layer.body][:3] == [32, 64, 128]
    assert sum(int(np.prod(p.shape)) for p in layer.parameters()) == 9_667_072
    with paddle.no_grad():
        assert list(layer(paddle.zeros([2, 3, 112, 112])).shape) == [2, 128]


@pytest.mark.parametrize("kwargs, message", [
    ({"input_size": 100}, "multiple of 16"),
    ({"width_mult": 0}, "width_mult"),
    ({"dropout": 1.0}, "dropout"),
])
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ToolkitError, match=message):
        get_model("MobileNetV1", **kwargs)


def test_wrong_input_size_is_a_clear_error():
    layer = get_model("MobileNetV1", width_mult=0.125, input_size=32)
    with pytest.raises(ToolkitError, match="expected input N×3×32×32"):
        layer(paddle.zeros([1, 3, 64, 64]))


def test_fused_head_equals_unfused_in_eval_mode():
    paddle.set_device("cpu")
    paddle.seed(3)
    rng = np.random.default_rng(3)
    layer = get_model("MobileNetV1", embedding_size=16, width_mult=0.125, input_size=32)
    for bn in (layer.head_bn, layer.features):      # non-trivial statistics, or folding would be a no-op
        for tensor, low, high in ((bn.weight, 0.5, 1.5), (bn.bias, -0.5, 0.5), (bn._mean, -0.5, 0.5),
                                  (bn._variance, 0.5, 2.0)):
            tensor.set_value(rng.uniform(low, high, tensor.shape).astype(np.float32))
    layer.eval()
    fused = layer.fused_for_inference()
    assert fused.fused_head and not hasattr(fused, "features")
    images = paddle.to_tensor(rng.normal(0, 1, (4, 3, 32, 32)).astype(np.float32))
    with paddle.no_grad():
        np.testing.assert_allclose(fused(images).numpy(), layer(images).numpy(), rtol=1e-4, atol=1e-5)


def test_tiny_network_learns():
    """A tiny width on 32×32 inputs fits 4 random 'identities' with a linear classifier: loss falls a lot."""
    paddle.set_device("cpu")
    paddle.seed(0)
    rng = np.random.default_rng(0)
    layer = get_model("MobileNetV1", embedding_size=16, width_mult=0.125, input_size=32, dropout=0.0)
    head = paddle.nn.Linear(16, 4)
    images = paddle.to_tensor(rng.normal(0, 1, (8, 3, 32, 32)).astype(np.float32))
    labels = paddle.to_tensor(np.arange(8) % 4)
    optimizer = paddle.optimizer.Adam(1e-2, parameters=layer.parameters() + head.parameters())
    losses = []
    for _ in range(30):
        loss = paddle.nn.functional.cross_entropy(head(layer(images)), labels)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        losses.append(float(loss))
    # seeds 0-9: the last loss is 0.2-0.4% of the untrained first one; 30% leaves a wide margin
    assert losses[-1] < 0.3 * losses[0], losses
