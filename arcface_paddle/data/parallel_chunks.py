"""Conversion work in chunks over a process pool, in input order, with constant memory.

Workers are started with ``forkserver`` (``spawn`` where there is none), never a bare ``fork``: the calling
process may already run threads (onnxruntime, OpenMP, tqdm's monitor), and a child forked while one of them
holds a lock starts with that lock held forever — the conversion hangs in a futex.  The fork server is a
fresh single-threaded process that has imported the task module once, so a worker still starts in ~10 ms.
"""
from __future__ import annotations

import collections
import multiprocessing
import os

from tqdm import tqdm

CHUNK = 256
_PRELOAD = ["arcface_paddle.data.convert"]     # imported once by the fork server, inherited by every worker


def pool_context():
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


def usable_cores() -> int:
    # the cores this process may run on (taskset / container limits), not every core of the machine
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_workers(workers) -> int:
    return max(1, int(workers if workers else usable_cores()))


def split(items, size: int = CHUNK) -> list:
    return [items[i:i + size] for i in range(0, len(items), size)]


def run_chunks(task, chunks, workers: int, total: int, desc: str, progress: bool):
    """Yield ``task(chunk)`` results in input order, over a process pool when ``workers > 1``.

    ``chunks`` may be a generator: at most ``4 × workers`` chunks are in flight, so memory stays
    constant however long the input is.  Each chunk's last element is the list the progress bar counts.
    Closing the generator (or an error in a task) terminates the pool before returning, so no worker
    writes after the caller has moved on (e.g. to clean up).
    """
    bar = tqdm(total=total, desc=desc, unit="img", disable=not progress, dynamic_ncols=True)
    try:
        if workers <= 1:
            for chunk in chunks:
                result = task(chunk)
                bar.update(len(chunk[-1]))
                yield result
            return
        with pool_context().Pool(workers) as pool:
            in_flight = collections.deque()
            for chunk in chunks:
                in_flight.append((len(chunk[-1]), pool.apply_async(task, (chunk,))))
                if len(in_flight) >= 4 * workers:
                    size, result = in_flight.popleft()
                    yield result.get()
                    bar.update(size)
            while in_flight:
                size, result = in_flight.popleft()
                yield result.get()
                bar.update(size)
    finally:
        bar.close()
