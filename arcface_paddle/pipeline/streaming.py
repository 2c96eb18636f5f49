"""Bounded producer/consumer helpers that overlap decoding and writing with inference.

Decoding (OpenCV), drawing/encoding (PIL, OpenCV) and Paddle inference release the GIL, so plain threads
overlap them.  Every helper here keeps a fixed number of items in flight, so memory stays flat however long
the input is (a folder of 100k photos, a live camera), and results come back in input order.
"""
from __future__ import annotations

import collections
import itertools
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, Optional, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_DONE = object()


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` consecutive items (the last one shorter)."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def ordered_map(function: Callable[[T], R], items: Iterable[T], workers: int, depth: int) -> Iterator[R]:
    """``map(function, items)`` on ``workers`` threads with at most ``depth`` calls queued or running, results
    in input order.  An exception of ``function`` is raised when its result is reached; closing the generator
    cancels the calls not yet started."""
    pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="ordered-map")
    pending: collections.deque[Future] = collections.deque()
    try:
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= max(1, depth):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class OrderedWorker:
    """A background thread running submitted calls one at a time, in order, with at most ``depth`` waiting:
    ``submit`` blocks while the backlog is full (so a slow writer holds the producer back, memory stays flat)
    and returns the results of calls finished meanwhile; ``drain`` waits for the rest."""

    def __init__(self, depth: int, name: str = "writer"):
        self.depth = max(1, depth)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._pending: collections.deque[Future] = collections.deque()

    def submit(self, function: Callable[..., R], *args) -> list[R]:
        self._pending.append(self._pool.submit(function, *args))
        done = []
        while self._pending and (len(self._pending) > self.depth or self._pending[0].done()):
            done.append(self._pending.popleft().result())
        return done

    def drain(self) -> list[R]:
        done = []
        while self._pending:
            done.append(self._pending.popleft().result())
        return done

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "OrderedWorker":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class Prefetcher:
    """Iterate ``source`` in a background thread, keeping up to ``depth`` items ready.

    For sequential sources (a video capture).  ``get(timeout)`` returns the next item, ``None`` when none
    arrived within ``timeout`` (the caller can check for a stop request and ask again), and raises
    ``StopIteration`` at the end; an exception raised by the source is re-raised here.  ``close`` stops the
    thread after the item it is reading.
    """

    def __init__(self, source: Iterable[T], depth: int):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source,), name="prefetch", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source) -> None:
        try:
            for item in source:
                if not self._put((item, None)):
                    return
        except BaseException as error:       # handed to the consumer, raised there
            self._put((_DONE, error))
            return
        self._put((_DONE, None))

    def get(self, timeout: Optional[float] = None):
        try:
            item, error = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is _DONE:
            self._queue.put((_DONE, error))      # every later get ends too
            if error is not None:
                raise error
            raise StopIteration
        return item

    def get_nowait(self):
        """The next item if one is ready, else ``None`` (end and errors are left for ``get``)."""
        try:
            item, error = self._queue.get_nowait()
        except queue.Empty:
            return None
        if item is _DONE:
            self._queue.put((_DONE, error))
            return None
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
