"""A bad training sample ends the run at once with its own one-line error, whatever the DataLoader does.

``paddle.io.DataLoader`` does not carry an exception out of its reader: with ``num_workers=0`` the reader
thread dies and the training loop waits forever for the next batch; with workers the main process gets
``SystemError: Blocking queue is killed`` and a traceback wall.  So no exception ever leaves a sample:
:class:`GuardedSamples` wraps a map-style dataset, returns a placeholder of the same shapes for an item
that fails, and appends a status to every sample (0, or the failed index + 1).  The training loop passes
each batch's statuses to :meth:`GuardedSamples.check`, which reads a failed item again in the main process,
so the error the user sees is the item's own (``error: data/images/00000003.bin: truncated shard ...``)
and the loader's workers are idle, not stuck, when the run ends.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from arcface_paddle.core.errors import ToolkitError


class GuardedSamples:
    """``dataset[i]`` plus a status; a failing item becomes ``placeholder()`` with status ``i + 1``."""

    def __init__(self, dataset, placeholder: Callable[[], Sequence]):
        self.dataset = dataset
        self.placeholder = placeholder

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        try:
            sample, status = tuple(self.dataset[index]), 0
        except Exception:  # noqa: BLE001  (any failure is reported by check() in the main process)
            sample, status = tuple(self.placeholder()), int(index) + 1
        return (*sample, np.int64(status))

    def check(self, statuses) -> None:
        """Raise the error of the first failed item of a batch (``statuses``: the batch's last field)."""
        failed = np.asarray(statuses).reshape(-1)
        failed = failed[failed > 0]
        if failed.size == 0:
            return
        index = int(failed[0]) - 1
        self.dataset[index]          # raises the item's own error, here in the main process
        raise ToolkitError(f"training sample {index}: failed while loading, but read fine when retried (is the "
                           f"data changing while training runs?)")
