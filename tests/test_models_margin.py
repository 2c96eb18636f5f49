"""Combined margin s·(cos(m1·θ + m2) − m3) against values computed by hand with math."""
import math

import numpy as np
import paddle
import pytest

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.losses.margin import (
    COS_EPS,
    MARGIN_PRESETS,
    CombinedMarginLoss,
    apply_margin,
    build_margin_loss,
    margin_softmax_loss,
    margin_target_cosine,
)

paddle.set_device("cpu")


def target(cos, m1, m2, m3):
    return margin_target_cosine(paddle.to_tensor([cos], dtype="float32"), m1, m2, m3).item()


@pytest.mark.parametrize("name,expected", [
    ("arcface", math.cos(math.pi / 3 + 0.5)),
    ("cosface", 0.5 - 0.35),
    ("combined", math.cos(math.pi / 3 + 0.3) - 0.2),
    ("sphereface", math.cos(1.35 * math.pi / 3)),
    ("softmax", 0.5),
])
def test_presets_at_60_degrees(name, expected):
    assert target(0.5, *MARGIN_PRESETS[name]) == pytest.approx(expected, abs=1e-6)


def test_preset_values():
    assert MARGIN_PRESETS["arcface"] == (1.0, 0.5, 0.0)
    assert MARGIN_PRESETS["cosface"] == (1.0, 0.0, 0.35)
    assert MARGIN_PRESETS["combined"] == (1.0, 0.3, 0.2)


def test_past_theta_max_uses_the_continuous_monotonic_fallback():
    theta = math.radians(170.0)  # ArcFace θmax = π − 0.5 ≈ 151.4°
    expected = math.cos(theta) - (1.0 + math.cos(math.pi - 0.5))
    assert target(math.cos(theta), 1.0, 0.5, 0.0) == pytest.approx(expected, abs=1e-6)
    # Sphereface-like m1 = 1.35: θmax = π / 1.35 ≈ 133.3°
    theta_max = math.pi / 1.35
    assert target(math.cos(2.5), 1.35, 0.0, 0.0) == pytest.approx(math.cos(2.5) - (1.0 + math.cos(theta_max)), abs=1e-6)


@pytest.mark.parametrize("name", sorted(MARGIN_PRESETS))
def test_target_logit_is_continuous_and_decreasing_in_theta(name):
    theta = np.linspace(0.0, math.pi, 2001)
    values = margin_target_cosine(paddle.to_tensor(np.cos(theta).astype("float32")), *MARGIN_PRESETS[name]).numpy()
    steps = np.diff(values)
    assert (steps <= 1e-6).all(), "the margin must never reward a larger angle"
    assert np.abs(steps).max() < 0.01, "no jump (grid step is 0.09°)"


@pytest.mark.parametrize("cos", [1.0, -1.0, 1.0 - 1e-7, -1.0 + 1e-7, 0.0])
@pytest.mark.parametrize("name", sorted(MARGIN_PRESETS))
def test_finite_value_and_gradient_at_zero_and_pi(cos, name):
    x = paddle.to_tensor([cos], dtype="float32", stop_gradient=False)
    y = margin_target_cosine(x, *MARGIN_PRESETS[name])
    y.backward()
    assert np.isfinite(y.numpy()).all() and np.isfinite(x.grad.numpy()).all()


def test_value_at_theta_zero_is_the_clipped_formula():
    c = float(np.float32(1.0 - COS_EPS))  # the clip limit as float32 holds it
    # float32 sqrt(1 − c²) near c = 1 carries ~1e-5 absolute error; the margin is still ≈ cos(0.5).
    assert target(1.0, 1.0, 0.5, 0.0) == pytest.approx(math.cos(math.acos(c) + 0.5), abs=3e-5)
    assert target(1.0, 1.0, 0.5, 0.0) < math.cos(0.5)


def test_gradient_matches_the_derivative():
    c = 0.3
    x = paddle.to_tensor([c], dtype="float32", stop_gradient=False)
    margin_target_cosine(x, 1.0, 0.5, 0.0).backward()
    # d/dc cos(acos(c) + m) = sin(acos(c) + m) / sqrt(1 − c²)
    expected = math.sin(math.acos(c) + 0.5) / math.sqrt(1 - c * c)
    assert x.grad.item() == pytest.approx(expected, rel=1e-5)


def test_apply_margin_touches_only_the_target_column_and_skips_label_minus_one():
    cos = np.array([[0.5, 0.2, -0.1], [0.3, 0.9, 0.0], [0.1, 0.2, 0.3]], dtype="float32")
    labels = paddle.to_tensor([0, 1, -1])
    logits = apply_margin(paddle.to_tensor(cos), labels, s=30.0, m1=1.0, m2=0.0, m3=0.35).numpy()
    expected = 30.0 * cos
    expected[0, 0] = 30.0 * (0.5 - 0.35)
    expected[1, 1] = 30.0 * (0.9 - 0.35)
    np.testing.assert_allclose(logits, expected, atol=1e-5)


def test_margin_softmax_loss_matches_numpy_even_beyond_paddles_64_clip():
    cos = np.array([[-0.9, 0.95, 0.1], [0.2, 0.1, 0.7]], dtype="float32")
    labels = np.array([0, 2])
    loss = margin_softmax_loss(paddle.to_tensor(cos), paddle.to_tensor(labels), CombinedMarginLoss(64, 1.0, 0.5, 0.0))
    logits = 64.0 * cos.astype(np.float64)
    for row, label in enumerate(labels):
        theta = math.acos(cos[row, label])
        logits[row, label] = 64.0 * (math.cos(theta + 0.5) if theta <= math.pi - 0.5
                                     else math.cos(theta) - 1.0 - math.cos(math.pi - 0.5))
    shifted = logits - logits.max(axis=1, keepdims=True)
    per_row = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(2), labels]
    assert per_row[0] > 64.0  # row 0's target is far away: this loss exceeds Paddle's softmax clip
    assert loss.item() == pytest.approx(per_row.mean(), rel=1e-5)


def test_presets_and_errors():
    assert build_margin_loss("cosface", s=30).extra_repr() == "s=30.0, m1=1.0, m2=0.0, m3=0.35"
    assert build_margin_loss((1.0, 0.3, 0.2)).m2 == 0.3
    with pytest.raises(ToolkitError, match="unknown margin 'arc'"):
        build_margin_loss("arc")
    with pytest.raises(ToolkitError, match="need s > 0"):
        CombinedMarginLoss(s=0)
    with pytest.raises(ToolkitError, match=r"\(m1, m2, m3\)"):
        build_margin_loss((1.0, 0.5))
