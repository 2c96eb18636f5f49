"""Optimisers by name (SGD with momentum, Adam, AdamW) and global-norm gradient clipping.

The learning rate is a plain float set every step from :mod:`.lr_schedule` (``optimizer.set_lr``), so a
resumed run needs no scheduler state: the rate is a pure function of the step.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import paddle

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.registry import Registry

OPTIMIZERS = Registry("optimizer")


@OPTIMIZERS.register("sgd")
def _sgd(parameters, lr, *, momentum=0.9, weight_decay=0.0, **_):
    # L2 weight decay added to the gradient, as torch SGD / the reference.
    return paddle.optimizer.Momentum(learning_rate=lr, momentum=momentum, parameters=parameters,
                                     weight_decay=weight_decay or None)


@OPTIMIZERS.register("adam")
def _adam(parameters, lr, *, weight_decay=0.0, betas=(0.9, 0.999), epsilon=1e-8, **_):
    return paddle.optimizer.Adam(learning_rate=lr, beta1=betas[0], beta2=betas[1], epsilon=epsilon,
                                 parameters=parameters, weight_decay=weight_decay or None)


@OPTIMIZERS.register("adamw")
def _adamw(parameters, lr, *, weight_decay=0.0, betas=(0.9, 0.999), epsilon=1e-8, **_):
    # Decoupled weight decay (Loshchilov & Hutter): the coefficient multiplies lr·w, not the gradient.
    return paddle.optimizer.AdamW(learning_rate=lr, beta1=betas[0], beta2=betas[1], epsilon=epsilon,
                                  parameters=parameters, weight_decay=weight_decay)


def build_optimizer(name: str, parameters: Sequence, *, lr: float, momentum: float = 0.9,
                    weight_decay: float = 0.0, betas: Sequence[float] = (0.9, 0.999), epsilon: float = 1e-8):
    """``build_optimizer("sgd", params, lr=0.1, momentum=0.9, weight_decay=5e-4)``."""
    if len(betas) != 2:
        raise ToolkitError(f"adam_betas: expected two values, got {list(betas)}")
    return OPTIMIZERS.build(name, parameters=list(parameters), lr=float(lr), momentum=float(momentum),
                            weight_decay=float(weight_decay), betas=tuple(float(b) for b in betas),
                            epsilon=float(epsilon))


def clip_grad_norm(parameters: Iterable, max_norm: float) -> float:
    """Scale gradients so their global L2 norm is at most ``max_norm``; returns the norm before clipping."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    total = paddle.sqrt(paddle.add_n([paddle.sum(g.astype("float32") ** 2) for g in grads]))
    norm = float(total.item())
    if max_norm > 0 and norm > max_norm:
        factor = max_norm / (norm + 1e-6)
        with paddle.no_grad():   # in-place on gradient leaves is refused while recording
            for grad in grads:
                grad.scale_(factor)
    return norm
