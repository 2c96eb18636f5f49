"""Inference for the service, off the event loop: one worker thread per core, each with its own predictors.

Decoding, detection, alignment and drawing of a request run on a worker thread (OpenCV and Paddle release
the GIL); the recogniser runs on batches of face crops from all requests in flight (:class:`MicroBatcher`).
Paddle runs one math thread per worker (``cpu_threads=1``), so workers use the cores in parallel instead
of fighting over them.
"""
from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

import cv2
import numpy as np

from arcface_paddle.core.images import encode_image
from arcface_paddle.pipeline.analyzer import FaceAnalyzer
from arcface_paddle.pipeline.faces import Face
from arcface_paddle.service.batching import MicroBatcher
from arcface_paddle.service.settings import ServiceSettings
from arcface_paddle.service.uploads import decode_upload


class InferenceEngine:
    def __init__(self, settings: ServiceSettings, on_batch: Optional[Callable[[int], None]] = None):
        self.settings = settings
        # Requests already run in parallel, one per worker: OpenCV's own thread pool (resize, warp, decode)
        # would only make the workers fight over the same cores.
        cv2.setNumThreads(1)
        self.analyzer = FaceAnalyzer(**settings.analyzer, cpu_threads=1, **settings.device)
        self._local = threading.local()
        self._twins = [self.analyzer]           # the first worker uses the original's predictors
        self._twins_lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="inference",
                                           initializer=self._start_worker)
        self._on_batch = on_batch
        self.batcher: Optional[MicroBatcher] = None

    def _start_worker(self) -> None:
        with self._twins_lock:
            self._local.analyzer = self._twins.pop() if self._twins else self.analyzer.clone()

    @property
    def _worker_analyzer(self) -> FaceAnalyzer:
        return self._local.analyzer

    async def start(self) -> None:
        self.batcher = MicroBatcher(self._embed_batch, self.executor, self.settings.batch_window_ms / 1000.0,
                                    self.settings.max_batch, self.settings.workers, self._on_batch)
        self.batcher.start()
        await self.run(lambda: None)            # one worker up: models answer before the service says ready

    async def stop(self) -> None:
        if self.batcher is not None:
            await self.batcher.stop()
        self.executor.shutdown(wait=True, cancel_futures=True)

    async def run(self, function: Callable, *args):
        """``function(*args)`` on an inference worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    # ---- on worker threads --------------------------------------------------------------------------------
    def _embed_batch(self, crops: np.ndarray) -> np.ndarray:
        return self._worker_analyzer.embed(list(crops))

    def _decode_detect_crop(self, data: bytes, name: str) -> tuple[np.ndarray, list[Face], list[np.ndarray]]:
        image = decode_upload(data, name, self.settings.max_pixels)
        analyzer = self._worker_analyzer
        faces = analyzer.detect(image)
        return image, faces, [analyzer.crop(image, face) for face in faces]

    def _draw_jpeg(self, image: np.ndarray, faces: list[Face]) -> bytes:
        return encode_image(self._worker_analyzer.draw(image, faces), ".jpg", quality=90)

    # ---- for request handlers -----------------------------------------------------------------------------
    async def detect(self, data: bytes, name: str) -> tuple[np.ndarray, list[Face]]:
        image, faces, _ = await self.run(self._decode_detect_crop, data, name)
        return image, faces

    async def analyze(self, data: bytes, name: str) -> tuple[np.ndarray, list[Face]]:
        """Decoded image and its faces (left to right) with L2-normalised embeddings."""
        image, faces, crops = await self.run(self._decode_detect_crop, data, name)
        if faces:
            embeddings = await self.batcher.submit(np.stack(crops))
            for face, embedding in zip(faces, embeddings):
                face.embedding = embedding
        return image, faces

    async def draw_jpeg(self, image: np.ndarray, faces: list[Face]) -> bytes:
        return await self.run(self._draw_jpeg, image, faces)

    @property
    def model_id(self) -> str:
        return self.analyzer.model_id
