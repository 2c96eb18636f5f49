"""Micro-batching: concurrent requests' face crops go through the recogniser together.

Callers ``await batcher.submit(crops)``; a dispatcher task takes a free worker slot, waits a short window
for more crops to arrive (while every worker was busy they pile up anyway), stacks up to ``max_items`` of
them, runs the batch on a worker thread and hands each caller its rows.  A caller with more crops than
``max_items`` is split over several batches.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Callable, Optional

import numpy as np


class MicroBatcher:
    def __init__(self, run_batch: Callable[[np.ndarray], np.ndarray], executor: Executor, window_s: float,
                 max_items: int, max_in_flight: int, on_batch: Optional[Callable[[int], None]] = None):
        self.run_batch = run_batch
        self.executor = executor
        self.window_s = float(window_s)
        self.max_items = max(1, int(max_items))
        self.on_batch = on_batch
        self._slots = asyncio.Semaphore(max(1, int(max_in_flight)))
        self._pending: list[tuple[np.ndarray, asyncio.Future]] = []
        self._wakeup = asyncio.Event()
        self._dispatcher: Optional[asyncio.Task] = None
        self._running: set = set()

    def start(self) -> None:
        self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())

    async def stop(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
        await asyncio.gather(*self._running, return_exceptions=True)
        for _, future in self._pending:
            if not future.done():
                future.set_exception(RuntimeError("service shutting down"))

    async def submit(self, items: np.ndarray) -> np.ndarray:
        """The batch function's rows for ``items`` (N×...), computed together with other callers' items."""
        loop = asyncio.get_running_loop()
        parts = [items[start:start + self.max_items] for start in range(0, len(items), self.max_items)]
        futures = []
        for part in parts:
            future = loop.create_future()
            self._pending.append((part, future))
            futures.append(future)
        self._wakeup.set()
        results = await asyncio.gather(*futures)
        return results[0] if len(results) == 1 else np.concatenate(results)

    def _pending_items(self) -> int:
        return sum(len(items) for items, _ in self._pending)

    async def _dispatch(self) -> None:
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            await self._slots.acquire()
            if self.window_s > 0 and self._pending_items() < self.max_items:
                await asyncio.sleep(self.window_s)
            batch, total = [], 0
            while self._pending and (not batch or total + len(self._pending[0][0]) <= self.max_items):
                items, future = self._pending.pop(0)
                batch.append((items, future))
                total += len(items)
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list) -> None:
        try:
            stacked = np.concatenate([items for items, _ in batch]) if len(batch) > 1 else batch[0][0]
            if self.on_batch is not None:
                self.on_batch(len(stacked))
            loop = asyncio.get_running_loop()
            try:
                output = await loop.run_in_executor(self.executor, self.run_batch, stacked)
            except Exception as error:       # every caller of the batch gets the failure
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                return
            start = 0
            for items, future in batch:
                if not future.done():
                    future.set_result(output[start:start + len(items)])
                start += len(items)
        finally:
            self._slots.release()
