"""Mixed-precision training: a loss scaler whose skip decision every rank shares, and its checkpoint state.

The run's ``fp16`` switch is the only one (see :mod:`arcface_paddle.backbones.layers`): the trainer opens
``paddle.amp.auto_cast`` around the backbone and scales the loss with :class:`RankSyncedGradScaler`.

Why not ``paddle.amp.GradScaler`` as it is (Paddle 3.3.1): its found-inf flag comes from *this* rank's
gradients only.  The replicated (backbone) gradients are summed over ranks before unscaling, so an overflow there
reaches every rank, but each rank's PartialFC class-centre shard is its own — one rank could skip its step and
halve its loss scale while the others step, and the replicas drift apart.  Here ``unscale_`` ORs the flag over
every rank (an all-reduce MAX of one integer) before anything steps.  It also unscales and checks gradients the
optimizer does not own (``sparse_update``'s sampled centre rows, stepped by ``PartialFC.step_centers``).

Paddle 3.3.1's ``GradScaler._update`` also crashes at the first overflow with numpy ≥ 2.4 (its log line calls
``float()`` on the shape-[1] scale tensor); :meth:`RankSyncedGradScaler._update` is the same rule without it.

``GradScaler.load_state_dict`` reads ``state["scale"][0]``: :func:`scaler_state` keeps the scale a one-element
list in ``meta.json`` and :func:`load_scaler_state` turns it back into an array (older checkpoints stored a bare
float and crashed every fp16 ``--resume``; they load too).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import paddle

from arcface_paddle.losses.distributed import all_reduce_max

INITIAL_LOSS_SCALE = 2.0 ** 16


class RankSyncedGradScaler(paddle.amp.GradScaler):
    """``paddle.amp.GradScaler`` whose found-inf flag is the OR over all ranks (and over ``extra_grads``)."""

    def unscale_(self, optimizer, extra_grads: Sequence[paddle.Tensor] = ()) -> None:
        """Unscale the optimizer's gradients and ``extra_grads`` in place; agree on skipping with every rank."""
        self._unscale(optimizer, extra_grads)

    def _unscale(self, optimizer, extra_grads: Sequence[paddle.Tensor] = ()) -> None:
        super()._unscale(optimizer)                  # paddle's: this rank's optimizer gradients
        if not self._enable:
            return
        found = self._found_inf.astype("int32")
        with paddle.no_grad():
            inverse = 1.0 / self._scale
            for grad in extra_grads:
                grad.multiply_(inverse.astype(grad.dtype))
                found = paddle.maximum(found, (~paddle.isfinite(grad).all()).astype("int32").reshape([1]))
        self._found_inf = all_reduce_max(found).astype("bool")

    def _update(self) -> None:
        """Paddle's dynamic loss-scale rule (halve after ``decr_every_n_nan_or_inf`` overflowing steps, double after
        ``incr_every_n_steps`` good ones), minus its log line that raises TypeError under numpy ≥ 2.4."""
        if not self._enable:
            return
        if self._cache_found_inf:
            self._incr_count, self._decr_count = 0, self._decr_count + 1
            if self._decr_count == self._decr_every_n_nan_or_inf:
                self._scale = self._scale * self._decr_ratio
                self._decr_count = 0
        else:
            self._decr_count, self._incr_count = 0, self._incr_count + 1
            if self._incr_count == self._incr_every_n_steps:
                self._scale = self._scale * self._incr_ratio
                self._incr_count = 0

    @property
    def found_inf(self) -> bool:
        """Whether the last ``unscale_`` found an overflow on any rank (the step is then skipped everywhere)."""
        return bool(self._enable and self._found_inf.item())

    @property
    def loss_scale(self) -> float:
        return float(self._scale.item()) if self._enable else 1.0


def make_grad_scaler(fp16: bool) -> Optional[RankSyncedGradScaler]:
    """The run's loss scaler when it trains with AMP fp16 (on a GPU), else None."""
    return RankSyncedGradScaler(init_loss_scaling=INITIAL_LOSS_SCALE) if fp16 else None


def scaler_state(scaler) -> Optional[dict]:
    """The scaler's state as plain JSON values for ``meta.json`` (``scale`` a one-element list); None without one."""
    if scaler is None:
        return None
    state = {}
    for key, value in scaler.state_dict().items():
        if key == "scale":
            state[key] = [float(v) for v in np.asarray(value, dtype=np.float64).reshape(-1)]
        else:
            state[key] = value.item() if hasattr(value, "item") else value
    return state


def load_scaler_state(scaler, saved: Optional[dict]) -> None:
    """Restore :func:`scaler_state` output (or an older checkpoint's bare-float scale) into ``scaler``."""
    if scaler is None or not saved:
        return
    state = dict(saved)
    state["scale"] = np.asarray(state["scale"], dtype=np.float32).reshape([1])
    scaler.load_state_dict(state)
