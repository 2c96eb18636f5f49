"""Multi-process runs write one checkpoint folder together: refuse at start when the ranks do not share it.

Every rank writes its class-centre shard and optimizer state into the same checkpoint folder and rank 0
publishes it (:func:`arcface_paddle.core.checkpoint.save_checkpoint`).  On several nodes that needs the output
folder on a filesystem every node mounts (NFS, Lustre, a cloud file share): a node-local disk would give each node
its own half of every checkpoint.  :func:`check_output_shared` finds out in a second, before any training — rank 0
writes a token file with a random name, every rank looks for it (allowing a shared filesystem's attribute cache
``SHARED_FS_WAIT_S`` to catch up) — instead of at the first checkpoint.
"""
from __future__ import annotations

import contextlib
import os
import secrets

import paddle
import paddle.distributed as dist

from arcface_paddle.core import checkpoint as ckpt
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.safe_io import atomic_write
from arcface_paddle.losses.distributed import all_reduce_max, all_reduce_sum

TOKEN_PREFIX = ".shared-output-check-"


def check_output_shared(output: str, rank: int, world_size: int) -> None:
    """Raise ToolkitError on every rank unless all ``world_size`` ranks see rank 0's files in ``output``."""
    if world_size <= 1:
        return
    token = paddle.to_tensor([secrets.randbelow(2 ** 62) if rank == 0 else 0], dtype="int64")
    path = os.path.join(output, f"{TOKEN_PREFIX}{int(all_reduce_max(token).item()):x}")
    created = False
    if rank == 0:
        created = not os.path.isdir(output)
        os.makedirs(output, exist_ok=True)
        with atomic_write(path, "w") as handle:
            handle.write("rank 0 of a training run checks that every rank sees this folder; safe to delete\n")
    dist.barrier()
    seen = paddle.zeros([world_size], dtype="int32")
    seen[rank] = int(not ckpt.wait_for_files(output, [os.path.basename(path)], ckpt.SHARED_FS_WAIT_S))  # NFS lag
    seen = all_reduce_sum(seen).numpy()
    dist.barrier()
    if rank == 0:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        if created:
            with contextlib.suppress(OSError):
                os.rmdir(output)      # created only for the check: leave things as they were
    blind = [r for r in range(world_size) if not seen[r]]
    if blind:
        raise ToolkitError(f"{output}: rank(s) {', '.join(map(str, blind))} of {world_size} do not see rank 0's files "
                           f"in this output folder; a multi-node run needs --output on a filesystem shared by every "
                           f"node (see docs/gpu.md, multi-node)")
