"""Face embeddings from an exported recognition model (Paddle Inference through :class:`Predictor`).

``RecognitionPredictor.embed`` takes aligned face crops exactly at ``model.yaml``'s ``input_size``
and refuses other sizes instead of resizing: a crop of the wrong size almost always means the caller
skipped alignment, and silently resizing would hide that and return a plausible but poor embedding.
"""
from __future__ import annotations

import copy
from typing import List, Optional

import cv2
import numpy as np

from arcface_paddle.core.embeddings import l2_normalize
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.predictor import Predictor


class RecognitionPredictor:
    """Face embeddings from aligned RGB uint8 crops, applying ``model.yaml``'s preprocessing."""

    def __init__(self, model_dir: str, batch_size: int = 32, **predictor_options):
        self.predictor = Predictor(model_dir, **predictor_options)
        self.config = self.predictor.config
        if self.config.task != "recognition":
            raise ToolkitError(f"{model_dir}: model.yaml task is {self.config.task!r}, expected 'recognition'")
        if batch_size < 1:
            raise ToolkitError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self._mean = np.asarray(self.config.mean, dtype=np.float32).reshape(1, 3, 1, 1)
        self._inv_std = (1.0 / np.asarray(self.config.std, dtype=np.float32)).reshape(1, 3, 1, 1)
        # one std for all channels: OpenCV's blobFromImages normalises + transposes in one pass
        uniform = len({float(v) for v in self.config.std}) == 1 and float(self.config.std[0]) != 0.0
        self._blob_scale = 1.0 / float(self.config.std[0]) if uniform else None

    def clone(self) -> "RecognitionPredictor":
        """A twin sharing the weights, for another thread (a predictor is not thread-safe)."""
        twin = copy.copy(self)
        twin.predictor = self.predictor.clone()
        return twin

    @property
    def model_id(self) -> Optional[str]:
        return self.config.model_id

    @property
    def embedding_size(self) -> Optional[int]:
        return self.config.embedding_size

    @property
    def input_size(self) -> List[int]:
        return [int(v) for v in self.config.input_size]

    def preprocess(self, images_rgb_uint8: np.ndarray) -> np.ndarray:
        """N×H×W×3 uint8 RGB → N×3×H×W float32 in the model's colour order and normalisation."""
        images = np.asarray(images_rgb_uint8)
        height, width = self.input_size
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[1:] != (height, width, 3):
            raise ToolkitError(f"{self.predictor.model_dir}: expected aligned RGB crops N×{height}×{width}×3, "
                               f"got shape {'×'.join(map(str, np.shape(images_rgb_uint8)))}")
        if images.dtype != np.uint8:
            raise ToolkitError(f"{self.predictor.model_dir}: expected uint8 pixels, got {images.dtype}")
        if self._blob_scale is not None and len(images) > 0:
            # (pixel - mean) * scale, NHWC → NCHW, RGB → BGR when asked: equal to the numpy chain below
            # to float rounding, ~5× faster at 112×112
            return cv2.dnn.blobFromImages(list(np.ascontiguousarray(images)), scalefactor=self._blob_scale,
                                          mean=tuple(float(v) for v in self.config.mean),
                                          swapRB=self.config.color_order == "BGR", crop=False, ddepth=cv2.CV_32F)
        if self.config.color_order == "BGR":
            images = images[..., ::-1]
        batch = images.transpose(0, 3, 1, 2).astype(np.float32)
        return (batch - self._mean) * self._inv_std

    def embed(self, images_rgb_uint8: np.ndarray, normalize: bool = False) -> np.ndarray:
        """N×D float32 embeddings (one H×W×3 image gives 1×D); ``normalize`` makes rows unit length."""
        batch = self.preprocess(images_rgb_uint8)
        parts = [self.predictor.run(batch[i:i + self.batch_size]) for i in range(0, len(batch), self.batch_size)]
        embeddings = np.concatenate(parts).astype(np.float32, copy=False)
        expected = self.config.embedding_size
        if expected and embeddings.shape[-1] != expected:
            raise ToolkitError(f"{self.predictor.model_dir}: the model gives {embeddings.shape[-1]}-d embeddings but "
                               f"model.yaml says embedding_size {expected}; fix model.yaml or re-export")
        if normalize:
            embeddings = l2_normalize(embeddings)
        return embeddings
