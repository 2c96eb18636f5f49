"""Process housekeeping for training: CPU threads per process, and children that die with their parent.

* :func:`threads_per_process` — Paddle pins its math libraries to one thread (it sets ``OMP_NUM_THREADS=1``
  at import, and ``paddle.distributed.launch`` passes that on to every rank), so a CPU run used one core
  whatever the machine had.  The default here is the cores this process may use (its CPU affinity and the
  container's CPU quota) divided by the training processes on this machine.
* :func:`die_with_parent` — asks Linux to signal this process when its parent dies (``PR_SET_PDEATHSIG``).
  Used by DataLoader workers (a trainer killed with ``kill -9`` used to leave them running for minutes)
  and by each rank of a ``paddle.distributed.launch`` run (killing the launcher used to leave the ranks
  training to the end).  Elsewhere than Linux it does nothing and says so.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import signal
from typing import Optional, Tuple

PR_SET_PDEATHSIG = 1


def cores_available() -> int:
    """CPU cores this process may run on: its affinity mask, capped by a cgroup v2 CPU quota if one is set."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):     # not Linux
        cores = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max", "r", encoding="ascii") as handle:
            quota, period = handle.read().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.floor(int(quota) / int(period))))
    except (OSError, ValueError):         # no cgroup v2 quota
        pass
    return max(1, cores)


def processes_on_this_machine() -> int:
    """Training processes sharing this machine: ``paddle.distributed.launch``'s local size, else 1."""
    local, world = os.environ.get("PADDLE_LOCAL_SIZE", ""), os.environ.get("PADDLE_TRAINERS_NUM", "")
    nodes = os.environ.get("PADDLE_NNODES", "1")
    if local.isdigit() and int(local) > 0:
        return int(local)
    if world.isdigit() and int(world) > 0:
        return max(1, math.ceil(int(world) / (int(nodes) if nodes.isdigit() and int(nodes) > 0 else 1)))
    return 1


def threads_per_process(requested: int = 0) -> Tuple[int, str]:
    """``(threads, why)``: ``requested`` when > 0, else cores available / processes on this machine."""
    if requested and int(requested) > 0:
        return int(requested), "cpu_threads"
    cores, processes = cores_available(), processes_on_this_machine()
    threads = max(1, cores // processes)
    return threads, f"{cores} cores / {processes} process{'es' if processes > 1 else ''}"


def set_math_threads(threads: int) -> None:
    """Threads of Paddle's CPU math (MKL and OpenMP) in this process, effective at once."""
    from paddle.base import core  # heavy (paddle): imported on first use

    core.set_num_threads(int(threads))


def die_with_parent(sig: int = signal.SIGTERM, parent_pid: Optional[int] = None) -> bool:
    """Have the kernel send ``sig`` to this process when its parent exits; True when armed.

    ``parent_pid``: the parent we expect; if it is already gone (we were re-parented before arming), the
    signal is sent now.
    """
    if not hasattr(os, "getppid") or not os.path.exists("/proc/self"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)
    return True


class WorkerDiesWithParent:
    """A DataLoader ``worker_init_fn``: arms :func:`die_with_parent` (SIGTERM) in each worker process for the
    process that created it (captured here, in the parent, before the workers start)."""

    def __init__(self):
        self.parent_pid = os.getpid()

    def __call__(self, worker_id: int) -> None:
        die_with_parent(signal.SIGTERM, parent_pid=self.parent_pid)
