"""Learning-rate schedules as pure functions of the global step.

``lr_at(step, ...)`` gives the rate used for optimizer step ``step`` (0-based):

* linear warmup over ``warmup_steps``: ``base_lr * (step + 1) / warmup_steps`` — the first step already
  trains (the reference started its warmup at exactly 0, wasting a step, and its epoch-unit decay reached
  0 for a whole last epoch); warmup ends exactly at ``base_lr``;
* then ``step`` decay (multiply by ``decay_rate`` at each boundary in ``decay_steps``) or ``cosine`` decay
  from ``base_lr`` towards ``min_lr`` over the remaining steps, never reaching it before training ends,
  or ``constant``.

``scaled_lr`` applies the linear scaling rule: the configured lr is for ``reference_batch`` images per step;
a global batch of ``global_batch`` images gets ``lr * global_batch / reference_batch``.
"""
from __future__ import annotations

import math
from typing import Sequence

from arcface_paddle.core.errors import ToolkitError

SCHEDULES = ("step", "cosine", "constant")


def scaled_lr(lr: float, global_batch: int, reference_batch: int) -> float:
    """Linear scaling rule: ``lr × global_batch / reference_batch`` (``reference_batch <= 0`` → unscaled)."""
    if reference_batch is None or reference_batch <= 0:
        return float(lr)
    return float(lr) * global_batch / reference_batch


def epochs_to_steps(epochs, steps_per_epoch: int) -> int:
    """Whole or fractional epochs → optimizer steps (rounded to the nearest step)."""
    return int(round(float(epochs) * steps_per_epoch))


def lr_at(step: int, *, base_lr: float, total_steps: int, warmup_steps: int = 0, schedule: str = "step",
          decay_steps: Sequence[int] = (), decay_rate: float = 0.1, min_lr: float = 0.0) -> float:
    """The learning rate for optimizer step ``step`` (0-based) of ``total_steps``."""
    if schedule not in SCHEDULES:
        raise ToolkitError(f"unknown lr schedule {schedule!r}; choose one of: {', '.join(SCHEDULES)}")
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return base_lr
    if schedule == "step":
        passed = sum(1 for boundary in decay_steps if step >= boundary)
        return base_lr * decay_rate ** passed
    decay_length = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0), decay_length) / decay_length
    # progress < 1 for every step that trains (step <= total_steps - 1), so lr stays above min_lr.
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def schedule_from_config(*, lr: float, global_batch: int, reference_batch: int, steps_per_epoch: int,
                         num_epochs: float, warmup_epochs: float = 0.0, schedule: str = "step",
                         decay_epochs: Sequence[float] = (), decay_rate: float = 0.1,
                         min_lr: float = 0.0) -> dict:
    """Keyword arguments for :func:`lr_at` from epoch-based config values (scaled by batch size)."""
    if steps_per_epoch <= 0:
        raise ToolkitError("the dataset gives no full batch per epoch: lower batch_size or add data")
    total_steps = max(epochs_to_steps(num_epochs, steps_per_epoch), 1)
    return dict(base_lr=scaled_lr(lr, global_batch, reference_batch), total_steps=total_steps,
                warmup_steps=epochs_to_steps(warmup_epochs, steps_per_epoch), schedule=schedule,
                decay_steps=[epochs_to_steps(epoch, steps_per_epoch) for epoch in decay_epochs],
                decay_rate=decay_rate, min_lr=min_lr)
