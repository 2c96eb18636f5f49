"""Backbones: registry, reference parameter counts, output shapes, options, and that a tiny one can learn."""
import numpy as np
import paddle
import pytest

from arcface_paddle.backbones import BACKBONES, get_model
from arcface_paddle.backbones.iresnet import IRBlock
from arcface_paddle.backbones.mobilefacenet import Bottleneck
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.losses import PartialFC

paddle.set_device("cpu")


def trainable_params(layer) -> int:
    return sum(int(p.size) for p in layer.parameters() if not p.stop_gradient)


def test_registry_has_every_backbone_and_rejects_unknown_names():
    for name in ("MobileFaceNet_128", "iResNet18", "iResNet34", "iResNet50", "iResNet100"):
        assert name in BACKBONES
    with pytest.raises(ToolkitError, match="unknown backbone 'iResNet51'"):
        get_model("iResNet51")


def test_mobilefacenet_matches_reference_layout_and_size():
    model = get_model("MobileFaceNet_128")
    # The paper's MobileFaceNet has ~0.99M parameters at 128-d.
    assert 1.0e6 <= trainable_params(model) <= 1.2e6
    blocks = [m for m in model.sublayers() if isinstance(m, Bottleneck)]
    assert len(blocks) == 5 + 1 + 6 + 1 + 2
    assert [b.residual for b in blocks].count(True) == 4 + 6 + 2
    assert model.gdc.conv.weight.shape == [512, 1, 7, 7]  # global depthwise conv over the 7×7 map
    model.eval()
    out = model(paddle.randn([2, 3, 112, 112]))
    assert out.shape == [2, 128] and np.isfinite(out.numpy()).all()


def test_iresnet50_matches_reference_size():
    model = get_model("iResNet50")
    # InsightFace's r50 at 512-d with 112×112 input: 43.59M parameters.
    assert abs(trainable_params(model) - 43.59e6) < 0.02e6
    blocks = [m for m in model.sublayers() if isinstance(m, IRBlock)]
    assert len(blocks) == 3 + 4 + 14 + 3
    assert model.fc.weight.shape == [512 * 7 * 7, 512]


@pytest.mark.parametrize("size", [56, 64])
def test_tiny_mobilefacenet_shapes_and_gdc_fits_small_inputs(size):
    model = get_model("MobileFaceNet_128", embedding_size=32, width_mult=0.25, input_size=size, blocks=(1, 1, 1, 1, 1))
    model.eval()
    assert model.gdc.conv.weight.shape[-1] == 4  # 56 and 64 both end as 4×4 after four stride-2 convs
    assert model(paddle.randn([3, 3, size, size])).shape == [3, 32]


def test_width_and_depth_options_shrink_models():
    full = trainable_params(get_model("MobileFaceNet_128"))
    narrow = trainable_params(get_model("MobileFaceNet_128", width_mult=0.5))
    shallow = trainable_params(get_model("MobileFaceNet_128", blocks=(1, 1, 1, 1, 1)))
    assert narrow < full / 2 and shallow < full
    r18 = trainable_params(get_model("iResNet18", width=8, input_size=32))
    r34 = trainable_params(get_model("iResNet34", width=8, input_size=32))
    assert r18 < r34


@pytest.mark.parametrize("name", ["iResNet18", "iResNet34", "iResNet100"])
def test_tiny_iresnets_forward(name):
    model = get_model(name, embedding_size=24, width=8, input_size=32, layers=(1, 1, 1, 1), dropout=0.2, fp16=True)
    model.eval()
    out = model(paddle.randn([2, 3, 32, 32]))
    assert out.shape == [2, 24] and out.dtype == paddle.float32


def test_wrong_input_size_is_a_clear_error():
    model = get_model("iResNet18", width=8, input_size=32, layers=(1, 1, 1, 1))
    with pytest.raises(ToolkitError, match=r"expected input N×3×32×32"):
        model(paddle.randn([1, 3, 64, 64]))


def test_eval_mode_is_deterministic_and_dropout_only_acts_in_training():
    paddle.seed(1)
    model = get_model("iResNet18", embedding_size=16, width=8, input_size=32, layers=(1, 1, 1, 1), dropout=0.5)
    x = paddle.randn([4, 3, 32, 32])
    model.eval()
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())
    model.train()
    assert not np.allclose(model(x).numpy(), model(x).numpy())


def test_tiny_backbone_with_partial_fc_learns_a_fixed_batch():
    paddle.seed(0)
    model = get_model("MobileFaceNet_128", embedding_size=32, width_mult=0.25, input_size=32, blocks=(1, 1, 1, 1, 1))
    head = PartialFC(32, 4, margin_loss=(1.0, 0.0, 0.1))
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 4)
    base = rng.standard_normal((4, 3, 32, 32)).astype("float32")
    images = paddle.to_tensor(base[labels] + 0.3 * rng.standard_normal((16, 3, 32, 32)).astype("float32"))
    opt = paddle.optimizer.Momentum(0.05, momentum=0.9, parameters=model.parameters() + head.parameters())
    losses = []
    for _ in range(12):
        loss = head(model(images), paddle.to_tensor(labels))
        loss.backward()
        opt.step()
        opt.clear_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("name,options", [
    ("MobileFaceNet_128", dict(width_mult=0.25, blocks=(1, 1, 1, 1, 1), input_size=64)),
    ("iResNet50", dict(width=8, layers=(1, 1, 1, 1), input_size=64, fp16=True)),
])
def test_backbones_export_to_static_graphs_that_match_eager(name, options, tmp_path):
    from paddle.static import InputSpec
    model = get_model(name, embedding_size=32, **options)
    model.eval()
    x = paddle.randn([2, 3, 64, 64])
    expected = model(x).numpy()
    static = paddle.jit.to_static(model, input_spec=[InputSpec([None, 3, 64, 64], "float32")], full_graph=True)
    paddle.jit.save(static, str(tmp_path / "inference"))
    loaded = paddle.jit.load(str(tmp_path / "inference"))
    np.testing.assert_allclose(loaded(x).numpy(), expected, rtol=1e-5, atol=1e-5)
