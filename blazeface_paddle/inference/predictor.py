"""Run an exported BlazeFace on photos: letterbox → normalise (model.yaml) → program → NMS → pixels.

    predictor = DetectorPredictor("inference_model/blazeface_full_range")
    for face in predictor.detect(image_rgb):        # H×W×3 uint8 RGB (gray/RGBA/16-bit accepted)
        face.box, face.score, face.keypoints          # pixels; keypoints 6×2 in KEYPOINT_NAMES order

Inference runs through :class:`arcface_paddle.core.predictor.Predictor` (OpenVINO fp32 on CPU with an
explicit thread count, oneDNN where OpenVINO cannot convert the program; GPU fp32/fp16 or TensorRT when asked).
"""
from __future__ import annotations

import copy
import dataclasses
import os

import cv2
import numpy as np

from arcface_paddle.core.boxes import hard_nms
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import as_rgb_uint8
from arcface_paddle.core.model_yaml import load_model_config
from arcface_paddle.core.predictor import Predictor
from blazeface_paddle.inference.letterbox import letterbox
from blazeface_paddle.inference.nms import weighted_nms
from blazeface_paddle.inference.tiling import merge_tiles, tile_windows
from blazeface_paddle.network.variants import KEYPOINT_NAMES

# Network inputs per Paddle run in detect_batch: per-image time falls ~2.5× from batch 1 to 4 and is flat
# from 4 to 16 (2 cores, BlazeFace full range; docs/throughput.md).
DEFAULT_BATCH_SIZE = 8
# OpenVINO (inside the paddlepaddle wheel) runs BlazeFace ~2x faster than oneDNN at batch 1 and 8, outputs
# within 3e-7 of it (docs/throughput.md, "Detector engine").
DEFAULT_CPU_ENGINE = "openvino"


@dataclasses.dataclass
class Detection:
    box: tuple                    # (x1, y1, x2, y2) float pixels of the original image
    score: float
    keypoints: np.ndarray         # 6×2 float32 pixels, KEYPOINT_NAMES order

    def as_dict(self) -> dict:
        return {"box": [float(v) for v in self.box], "score": float(self.score),
                "keypoints": {name: [float(x), float(y)] for name, (x, y) in zip(KEYPOINT_NAMES, self.keypoints)}}


def select(boxes, keypoints, scores, *, score_threshold: float, nms: str = "weighted", nms_threshold: float = 0.3,
           max_detections: int | None = None) -> tuple:
    """Score threshold then NMS on one image's decoded anchors → (boxes K×4, keypoints K×P×2, scores K)."""
    keep = np.asarray(scores) >= score_threshold
    boxes, keypoints, scores = np.asarray(boxes)[keep], np.asarray(keypoints)[keep], np.asarray(scores)[keep]
    if nms == "weighted":
        return weighted_nms(boxes, keypoints, scores, nms_threshold, max_detections)
    if nms == "hard":
        index = hard_nms(boxes, scores, nms_threshold, max_detections)
        return boxes[index], keypoints[index], scores[index]
    raise ToolkitError(f"unknown NMS {nms!r}; choose 'weighted' or 'hard'")


class DetectorPredictor:
    """Face detector over an exported BlazeFace folder (program + inference.pdiparams + model.yaml)."""

    def __init__(self, model_dir: str | os.PathLike, cpu_threads: int = 2, score_threshold: float | None = None,
                 nms: str | None = None, nms_threshold: float | None = None, max_detections: int | None = None,
                 use_gpu: bool = False, cpu_engine: str = DEFAULT_CPU_ENGINE, **predictor_options):
        """``cpu_engine``: what runs the program on a CPU (OpenVINO by default, oneDNN when OpenVINO cannot
        convert the program); ``predictor_options``: the rest of :class:`Predictor`'s (``use_tensorrt``,
        ``precision``, ``gpu_id``)."""
        model_dir = os.fspath(model_dir)
        self.model_dir = model_dir
        self.config = load_model_config(model_dir)
        if self.config.task != "detection" or not self.config.detector:
            raise ToolkitError(f"{model_dir}: model.yaml describes a {self.config.task} model, not a face detector")
        self._predictor = Predictor(model_dir, cpu_threads=cpu_threads, use_gpu=use_gpu, cpu_engine=cpu_engine,
                                    **predictor_options)
        section = self.config.detector
        self.input_size = int(self.config.input_size[0])
        self.score_threshold = float(section["score_threshold"] if score_threshold is None else score_threshold)
        self.nms = nms or section.get("nms", "weighted")
        self.nms_threshold = float(section.get("nms_threshold", 0.3) if nms_threshold is None else nms_threshold)
        self.max_detections = max_detections
        if self.nms not in ("weighted", "hard"):
            raise ToolkitError(f"unknown NMS {self.nms!r}; choose 'weighted' or 'hard'")
        if not 0.0 <= self.score_threshold <= 1.0 or not 0.0 < self.nms_threshold <= 1.0:
            raise ToolkitError(f"score threshold must be in [0, 1] and NMS IoU threshold in (0, 1], got "
                               f"{self.score_threshold} and {self.nms_threshold}")
        self.mean = np.asarray(self.config.mean, np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(self.config.std, np.float32).reshape(1, 3, 1, 1)
        # blobFromImages takes one scale for all channels; per-channel std falls back to numpy
        uniform = len(set(float(v) for v in self.config.std)) == 1 and float(self.config.std[0]) != 0.0
        self._blob_scale = 1.0 / float(self.config.std[0]) if uniform else None
        # OpenCV subtracts the mean in the channel order of the (possibly swapped) image: model order
        self._blob_mean = tuple(float(v) for v in self.config.mean)
        if len(self._predictor.output_names) != 3:
            raise ToolkitError(f"{model_dir}: program has {len(self._predictor.output_names)} outputs, a BlazeFace "
                               f"export has 3 (boxes, keypoints, scores); re-export it with blazeface_paddle")

    @property
    def engine(self) -> str:
        """What runs the program: "openvino", or "onednn" where OpenVINO cannot convert it (or was not asked)."""
        return self._predictor.engine

    def clone(self) -> "DetectorPredictor":
        """A twin sharing the weights, for another thread (a predictor is not thread-safe)."""
        twin = copy.copy(self)
        twin._predictor = self._predictor.clone()
        return twin

    def _to_input(self, batch_uint8: np.ndarray) -> np.ndarray:
        """N×S×S×3 RGB → N×3×S×S float32 normalised as model.yaml says.

        uint8 batches with one std for all channels (the shipped models) go through OpenCV's
        ``blobFromImages`` — subtract, scale, transpose and colour swap in one pass, ~7× faster than the
        numpy chain (0.04 vs 0.28 ms for 128×128); the numbers agree to float rounding (≤ 6e-8).
        """
        batch = np.asarray(batch_uint8)
        if (self._blob_scale is not None and batch.dtype == np.uint8 and batch.ndim == 4 and batch.shape[-1] == 3
                and len(batch) > 0):
            return cv2.dnn.blobFromImages(list(np.ascontiguousarray(batch)), scalefactor=self._blob_scale,
                                          mean=self._blob_mean, swapRB=self.config.color_order == "BGR", crop=False,
                                          ddepth=cv2.CV_32F)
        batch = batch.astype(np.float32, copy=False)
        if self.config.color_order == "BGR":
            batch = batch[..., ::-1]
        return (batch.transpose(0, 3, 1, 2) - self.mean) / self.std

    def run(self, batch_uint8: np.ndarray) -> tuple:
        """Raw program outputs for N×S×S×3 uint8 RGB network images: (boxes, keypoints, scores), normalised."""
        batch = self._to_input(batch_uint8)
        try:
            return tuple(self._predictor.run_outputs(batch))
        except (NotImplementedError, RuntimeError) as error:   # e.g. a PIR full-range program under oneDNN
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ToolkitError(f"{self.model_dir}: Paddle Inference failed to run the detector ({first[:160]}); "
                               f"re-export with fmt='legacy'") from None

    def postprocess(self, boxes, keypoints, scores, placement) -> tuple:
        """One network input's raw outputs → (boxes K×4, keypoints K×P×2, scores K) in its window's pixels.

        Score threshold, NMS and the letterbox mapping back to pixels: the per-image step every detection path
        (one image, a batch, tiles, other detection passes) shares.  ``placement`` is the
        :class:`~blazeface_paddle.inference.letterbox.Letterbox` that made the input.
        """
        boxes, keypoints, scores = select(boxes, keypoints, scores, score_threshold=self.score_threshold,
                                          nms=self.nms, nms_threshold=self.nms_threshold,
                                          max_detections=self.max_detections)
        return placement.to_pixels(boxes), placement.to_pixels(keypoints), scores

    def run_windows(self, canvases, placements, batch_size: int = DEFAULT_BATCH_SIZE) -> list:
        """Letterboxed network inputs (S×S×3 uint8 each) → postprocessed detections per input, run in batches."""
        if batch_size < 1:
            raise ToolkitError(f"batch_size must be >= 1, got {batch_size}")
        results = []
        for start in range(0, len(canvases), batch_size):
            boxes, keypoints, scores = self.run(np.stack(canvases[start:start + batch_size]))
            results += [self.postprocess(boxes[i], keypoints[i], scores[i], placements[start + i])
                        for i in range(len(boxes))]
        return results

    def detect_batch(self, images, tile_size: int | None = None, tile_overlap: float = 0.25,
                     batch_size: int = DEFAULT_BATCH_SIZE) -> list:
        """Faces of each image (a list of lists, best score first), the network run on ``batch_size`` inputs at
        a time across images.  Equal to :meth:`detect` on each image (the program declares a dynamic batch
        dimension; outputs do not depend on the batch).  ``tile_size``: as in :meth:`detect`.
        """
        images = [as_rgb_uint8(image) for image in images]
        windows, canvases, placements = [], [], []
        for number, image in enumerate(images):
            height, width = image.shape[:2]
            for window in (tile_windows(height, width, tile_size, tile_overlap) if tile_size
                           else [(0, 0, width, height)]):
                canvas, placement = letterbox(image[window[1]:window[3], window[0]:window[2]], self.input_size)
                windows.append((number, window))
                canvases.append(canvas)
                placements.append(placement)
        per_image = [[] for _ in images]
        for (number, window), result in zip(windows, self.run_windows(canvases, placements, batch_size)):
            per_image[number].append((window, result))
        return [self._detections(image, results, tiled=bool(tile_size))
                for image, results in zip(images, per_image)]

    def _detections(self, image: np.ndarray, window_results: list, tiled: bool) -> list:
        height, width = image.shape[:2]
        if tiled:
            boxes, keypoints, scores = merge_tiles(window_results, height, width, nms_threshold=self.nms_threshold)
        else:
            boxes, keypoints, scores = window_results[0][1]
        boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
        return [Detection(box=tuple(float(v) for v in b), score=float(s), keypoints=k.astype(np.float32))
                for b, k, s in zip(boxes, keypoints, scores) if b[2] > b[0] and b[3] > b[1]]

    def detect(self, image, tile_size: int | None = None, tile_overlap: float = 0.25) -> list:
        """Faces in one image, best score first.

        ``tile_size`` (pixels) additionally runs the detector on overlapping tiles of that size and
        merges them with the whole-image pass — for small faces in big photos (the tiles run as one batch).
        """
        return self.detect_batch([image], tile_size=tile_size, tile_overlap=tile_overlap)[0]
