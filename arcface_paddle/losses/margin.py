"""Combined angular margin softmax ``s·(cos(m1·θ + m2) − m3)`` (SphereFace / ArcFace / CosFace family).

Only the target logit of each row gets the margin; the others stay ``s·cos θ``.  Written with plain Paddle
ops so it runs on CPU (``F.margin_cross_entropy`` has no CPU kernel).

Numerical safety (what this module does, and why):

* the cosine is clipped to ``[-1 + COS_EPS, 1 - COS_EPS]`` before ``sqrt(1 − cos²)`` or ``acos``, whose
  derivatives are infinite at ±1; at the clip limits the margin term's gradient is zero (as with the
  reference's ``clamp``) rather than NaN;
* for ``m1 = 1`` the margin is applied with ``cos θ·cos m2 − sin θ·sin m2`` (no ``acos``);
* where ``m1·θ + m2`` would pass π, ``cos(m1·θ + m2)`` turns back up and would *reward* a larger angle,
  so for ``θ > θmax = (π − m2)/m1`` the target becomes ``cos θ − (1 + m3 + cos θmax)``: still decreasing in θ
  and continuous at θmax (value ``−1 − m3`` there).  This is a continuous version of the reference ArcFace
  fallback ``cos θ − m·sin m`` (which jumps slightly at θmax).
"""
from __future__ import annotations

import math
from typing import Dict, Tuple

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from arcface_paddle.core.errors import ToolkitError

COS_EPS = 1e-6

# name → (m1, m2, m3)
MARGIN_PRESETS: Dict[str, Tuple[float, float, float]] = {
    "arcface": (1.0, 0.5, 0.0),     # additive angular margin
    "cosface": (1.0, 0.0, 0.35),    # additive cosine margin
    "combined": (1.0, 0.3, 0.2),    # ArcFace paper's combined margin
    "sphereface": (1.35, 0.0, 0.0),  # multiplicative angular margin (normalised features, no annealing)
    "softmax": (1.0, 0.0, 0.0),     # normalised softmax, no margin
}


def margin_threshold(m1: float, m2: float) -> float:
    """θmax = (π − m2)/m1: past this angle the margin uses the monotonic fallback."""
    return (math.pi - m2) / m1


def margin_target_cosine(cos_target: paddle.Tensor, m1: float = 1.0, m2: float = 0.5, m3: float = 0.0,
                         eps: float = COS_EPS) -> paddle.Tensor:
    """``cos(m1·θ + m2) − m3`` for target cosines (any shape), with the safe clip and θ > θmax fallback."""
    if m1 == 1.0 and m2 == 0.0:
        return cos_target - m3
    clipped = paddle.clip(cos_target, -1.0 + eps, 1.0 - eps)
    if m1 == 1.0:
        sin_target = paddle.sqrt(1.0 - clipped * clipped)
        margin = clipped * math.cos(m2) - sin_target * math.sin(m2) - m3
    else:
        margin = paddle.cos(m1 * paddle.acos(clipped) + m2) - m3
    theta_max = margin_threshold(m1, m2)
    if theta_max >= math.pi:
        return margin
    fallback = cos_target - (1.0 + m3 + math.cos(theta_max))
    return paddle.where(clipped >= math.cos(theta_max), margin, fallback)


def apply_margin(cosine: paddle.Tensor, labels: paddle.Tensor, s: float = 64.0, m1: float = 1.0,
                 m2: float = 0.5, m3: float = 0.0) -> paddle.Tensor:
    """Scaled logits ``s·cos`` with the margin on column ``labels[i]`` of row i (rows with label −1 untouched).

    ``cosine``: N×C cosines; ``labels``: N int64 column indices, −1 where the row's class is not among these
    columns (another rank's shard, in model-parallel PartialFC).
    """
    num_columns = cosine.shape[1]
    labels = labels.reshape([-1]).astype("int64")
    has_target = (labels >= 0).astype(cosine.dtype)
    onehot = F.one_hot(paddle.clip(labels, min=0), num_columns).astype(cosine.dtype) * has_target.unsqueeze(1)
    target = (cosine * onehot).sum(axis=1)
    delta = (margin_target_cosine(target, m1, m2, m3) - target) * has_target
    return s * (cosine + onehot * delta.unsqueeze(1))


class CombinedMarginLoss(nn.Layer):
    """Turns cosines into margin logits: ``forward(cosine N×C, labels N) -> s·cos with the target margined``.

    The cross entropy is taken by the caller (PartialFC does it model-parallel); ``margin_softmax_loss`` below
    is the single-device version.  The name follows InsightFace's arcface_torch.
    """

    def __init__(self, s: float = 64.0, m1: float = 1.0, m2: float = 0.5, m3: float = 0.0):
        super().__init__()
        if s <= 0 or m1 <= 0 or m2 < 0 or m3 < 0:
            raise ToolkitError(f"margin: need s > 0, m1 > 0, m2 >= 0, m3 >= 0; got s={s} m1={m1} m2={m2} m3={m3}")
        self.s, self.m1, self.m2, self.m3 = float(s), float(m1), float(m2), float(m3)

    @classmethod
    def from_preset(cls, name: str, s: float = 64.0) -> "CombinedMarginLoss":
        """``CombinedMarginLoss.from_preset("cosface")`` — see MARGIN_PRESETS."""
        if name not in MARGIN_PRESETS:
            raise ToolkitError(f"unknown margin {name!r}; choose one of: {', '.join(sorted(MARGIN_PRESETS))}")
        return cls(s, *MARGIN_PRESETS[name])

    def forward(self, cosine: paddle.Tensor, labels: paddle.Tensor) -> paddle.Tensor:
        return apply_margin(cosine, labels, self.s, self.m1, self.m2, self.m3)

    def extra_repr(self) -> str:
        return f"s={self.s}, m1={self.m1}, m2={self.m2}, m3={self.m3}"


def build_margin_loss(margin: str | tuple | list | CombinedMarginLoss = "arcface",
                      s: float = 64.0) -> CombinedMarginLoss:
    """A margin from a preset name, an (m1, m2, m3) triple, or an existing CombinedMarginLoss."""
    if isinstance(margin, CombinedMarginLoss):
        return margin
    if isinstance(margin, str):
        return CombinedMarginLoss.from_preset(margin, s=s)
    values = tuple(float(v) for v in margin)
    if len(values) != 3:
        raise ToolkitError(f"margin: expected a preset name or (m1, m2, m3), got {margin!r}")
    return CombinedMarginLoss(s, *values)


def margin_softmax_loss(cosine: paddle.Tensor, labels: paddle.Tensor,
                        margin: CombinedMarginLoss | None = None) -> paddle.Tensor:
    """Mean cross entropy of the margin logits over all columns (single device, all classes present).

    Computed as log-sum-exp minus the target: Paddle's CPU ``log_softmax`` / ``F.cross_entropy`` clip
    ``logit − max`` at −64, capping each row's loss at ~64 — which early ArcFace training (s = 64, target
    pushed past 90°) exceeds, silently zeroing part of the loss value.
    """
    margin = margin if margin is not None else CombinedMarginLoss()
    labels = labels.reshape([-1]).astype("int64")
    return softmax_cross_entropy(margin(cosine, labels), labels)


def softmax_cross_entropy(logits: paddle.Tensor, labels: paddle.Tensor) -> paddle.Tensor:
    """Exact mean softmax cross entropy (no −64 clip); ``labels`` N int64 column indices."""
    shifted = logits - logits.max(axis=1, keepdim=True).detach()
    target = paddle.take_along_axis(shifted, labels.reshape([-1, 1]).astype("int64"), axis=1).squeeze(1)
    return (paddle.log(paddle.exp(shifted).sum(axis=1)) - target).mean()
