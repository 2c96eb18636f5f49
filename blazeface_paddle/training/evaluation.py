"""Detection average precision at an IoU threshold, overall and per face-size bucket.

* Matching (per image, detections by falling score): a detection is a true positive when its best IoU
  among the still-unmatched annotated faces reaches the threshold; a second detection of the same face
  is a false positive (duplicate); a detection that overlaps only an *ignored* face (WIDER "invalid",
  below ``min_face_size``, or outside the size bucket being scored) counts neither way.
* AP: area under the precision/recall curve with VOC's all-point interpolation (precision made
  monotonically non-increasing, summed over every recall step).
* Size buckets by box HEIGHT in original-image pixels: small < 32, medium 32–96, large > 96.  When a
  bucket is scored, faces outside it are ignored and so are unmatched detections whose height is outside
  it (as COCO's area ranges do), so each bucket's AP is about faces of that size only.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from prettytable import PrettyTable
from tqdm import tqdm

from arcface_paddle.core.boxes import box_iou
from arcface_paddle.core.images import normalize_rgb_uint8
from arcface_paddle.core.model_yaml import MODEL_CONFIG_NAME
from blazeface_paddle.inference.letterbox import letterbox
from blazeface_paddle.inference.nms import weighted_nms
from blazeface_paddle.inference.predictor import DetectorPredictor
from blazeface_paddle.network.anchors import anchors_for
from blazeface_paddle.network.decode import decode, scores_from_logits
from blazeface_paddle.network.variants import INPUT_MEAN, INPUT_STD
from blazeface_paddle.training.annotations import read_annotated_image, read_annotations, resolve_images_root

SIZE_BUCKETS: Tuple[Tuple[str, float, float], ...] = (
    ("small", 0.0, 32.0), ("medium", 32.0, 96.0), ("large", 96.0, math.inf))
TRUE_POSITIVE, FALSE_POSITIVE, IGNORED = 1, 0, -1


def match_image(det_boxes: np.ndarray, det_scores: np.ndarray, gt_boxes: np.ndarray,
                gt_ignore: Optional[np.ndarray] = None, iou_threshold: float = 0.5,
                det_ignore: Optional[np.ndarray] = None) -> np.ndarray:
    """Label each detection TRUE_POSITIVE / FALSE_POSITIVE / IGNORED (in the input order).

    ``det_ignore`` marks detections to ignore when they match nothing (out-of-bucket sizes).
    """
    det_boxes = np.asarray(det_boxes, np.float64).reshape(-1, 4)
    num_det, num_gt = len(det_boxes), len(np.asarray(gt_boxes).reshape(-1, 4))
    gt_ignore = np.zeros(num_gt, bool) if gt_ignore is None else np.asarray(gt_ignore, bool)
    det_ignore = np.zeros(num_det, bool) if det_ignore is None else np.asarray(det_ignore, bool)
    labels = np.full(num_det, FALSE_POSITIVE, np.int8)
    if num_det == 0:
        return labels
    ious = box_iou(det_boxes, gt_boxes) if num_gt else np.zeros((num_det, 0))
    matched = np.zeros(num_gt, bool)
    for det in np.argsort(-np.asarray(det_scores, np.float64), kind="stable"):
        candidates = np.where(~matched & ~gt_ignore, ious[det], -1.0)
        best = int(np.argmax(candidates)) if num_gt else -1
        if best >= 0 and candidates[best] >= iou_threshold:
            labels[det], matched[best] = TRUE_POSITIVE, True
        elif num_gt and (ious[det][gt_ignore] >= iou_threshold).any():
            labels[det] = IGNORED
        elif det_ignore[det]:
            labels[det] = IGNORED
    return labels


def average_precision(scores: np.ndarray, labels: np.ndarray, num_positives: int) -> float:
    """VOC all-point interpolated AP of detections ``labels`` (IGNORED entries dropped); NaN without faces."""
    if num_positives <= 0:
        return float("nan")
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
    counted = labels != IGNORED
    scores, labels = scores[counted], labels[counted]
    order = np.argsort(-scores, kind="stable")
    hits = (labels[order] == TRUE_POSITIVE).astype(np.float64)
    true_positives, false_positives = np.cumsum(hits), np.cumsum(1 - hits)
    recall = true_positives / num_positives
    precision = true_positives / np.maximum(true_positives + false_positives, 1e-12)
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.where(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


@dataclasses.dataclass
class BucketResult:
    ap: float
    num_faces: int
    recall: float          # recall over all detections given (at the lowest score kept)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class DetectionReport:
    iou_threshold: float
    num_images: int
    num_detections: int
    overall: BucketResult
    buckets: Dict[str, BucketResult]

    @property
    def ap(self) -> float:
        return self.overall.ap

    def as_dict(self) -> dict:
        return {"iou_threshold": self.iou_threshold, "num_images": self.num_images,
                "num_detections": self.num_detections, "ap": self.overall.ap,
                "overall": self.overall.as_dict(),
                "buckets": {name: result.as_dict() for name, result in self.buckets.items()}}

    def table(self) -> str:
        table = PrettyTable(["subset", "faces", f"AP@{self.iou_threshold:g}", "recall"])
        rows = [("all", self.overall)] + [(f"{name} (h {_bucket_range(name)})", result)
                                          for name, result in self.buckets.items()]
        for name, result in rows:
            table.add_row([name, result.num_faces, _percent(result.ap), _percent(result.recall)])
        return table.get_string()


def _percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.2f}"


def _bucket_range(name: str) -> str:
    low, high = next((low, high) for bucket, low, high in SIZE_BUCKETS if bucket == name)
    return f">= {low:g} px" if math.isinf(high) else f"{low:g}-{high:g} px"


def _heights(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return boxes[:, 3] - boxes[:, 1]


def _score_subset(predictions, ground_truths, iou_threshold, height_range=None) -> Tuple[BucketResult, int]:
    all_scores, all_labels, num_positives = [], [], 0
    for (det_boxes, det_scores), (gt_boxes, gt_ignore) in zip(predictions, ground_truths):
        gt_ignore = np.asarray(gt_ignore, bool).copy()
        det_ignore = None
        if height_range is not None:
            low, high = height_range
            gt_h, det_h = _heights(gt_boxes), _heights(det_boxes)
            gt_ignore |= (gt_h < low) | (gt_h >= high)
            det_ignore = (det_h < low) | (det_h >= high)
        labels = match_image(det_boxes, det_scores, gt_boxes, gt_ignore, iou_threshold, det_ignore)
        all_scores.append(np.asarray(det_scores, np.float64).reshape(-1))
        all_labels.append(labels)
        num_positives += int((~gt_ignore).sum())
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    labels = np.concatenate(all_labels) if all_labels else np.zeros(0, np.int8)
    recall = float((labels == TRUE_POSITIVE).sum() / num_positives) if num_positives else float("nan")
    return BucketResult(average_precision(scores, labels, num_positives), num_positives, recall), len(scores)


def evaluate_detections(predictions: Sequence[Tuple[np.ndarray, np.ndarray]],
                        ground_truths: Sequence[Tuple[np.ndarray, np.ndarray]],
                        iou_threshold: float = 0.5,
                        size_buckets: Sequence[Tuple[str, float, float]] = SIZE_BUCKETS) -> DetectionReport:
    """AP over a set of images.

    ``predictions[i] = (boxes K×4, scores K)`` and ``ground_truths[i] = (boxes N×4, ignore N bool)`` for
    image i, all in original-image pixels.
    """
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} prediction lists for {len(ground_truths)} images")
    overall, num_detections = _score_subset(predictions, ground_truths, iou_threshold)
    buckets = {name: _score_subset(predictions, ground_truths, iou_threshold, (low, high))[0]
               for name, low, high in size_buckets}
    return DetectionReport(iou_threshold, len(predictions), num_detections, overall, buckets)


def ground_truths_from_annotations(annotations) -> List[Tuple[np.ndarray, np.ndarray]]:
    """``ImageAnnotation`` list (wider_dataset) → the ``ground_truths`` argument above."""
    return [(item.boxes, item.ignore) for item in annotations]


# ------------------------------------------------------------------ running a detector over a data set
class LayerDetector:
    """Detect faces with an eager BlazeFace layer the way the predictor does: letterbox → network →
    decode → score threshold → weighted NMS → original-image pixels.  For evaluation during training
    and of checkpoints; exported models go through ``blazeface_paddle.inference.predictor``."""

    def __init__(self, layer, score_threshold: float = 0.05, nms_threshold: Optional[float] = None,
                 max_detections: int = 200):

        self.layer = layer
        self.variant = layer.variant
        self.anchors = anchors_for(self.variant)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = self.variant.nms_threshold if nms_threshold is None else float(nms_threshold)
        self.max_detections = int(max_detections)

    def detect_batch(self, images_rgb: Sequence[np.ndarray]) -> List[Tuple[np.ndarray, np.ndarray]]:
        """[(boxes K×4 pixels, scores K)] per image."""
        import paddle  # heavy (paddle): imported on first use



        size = self.variant.input_size
        placed = [letterbox(image, size) for image in images_rgb]
        batch = normalize_rgb_uint8(np.stack([canvas for canvas, _ in placed]), INPUT_MEAN[0], INPUT_STD[0])
        was_training = self.layer.training
        self.layer.eval()
        with paddle.no_grad():
            regressors, logits = self.layer(paddle.to_tensor(batch))
        if was_training:
            self.layer.train()
        boxes, keypoints = decode(regressors.numpy(), self.anchors, size)
        scores = scores_from_logits(logits.numpy(), self.variant.score_clipping)
        results = []
        for index, (image, (_, placement)) in enumerate(zip(images_rgb, placed)):
            keep = scores[index] >= self.score_threshold
            kept_boxes, _, kept_scores = weighted_nms(boxes[index][keep], keypoints[index][keep], scores[index][keep],
                                                      self.nms_threshold, self.max_detections)
            pixels = placement.to_pixels(kept_boxes).reshape(-1, 4)
            height, width = image.shape[:2]                  # clipped to the image, as the predictor does
            pixels = np.clip(pixels, 0, np.array([width, height, width, height], np.float32))
            results.append((pixels, kept_scores))
        return results


def evaluate_on_annotations(detect_batch, annotations, images_root: str, batch_size: int = 32,
                            iou_threshold: float = 0.5, progress: bool = False) -> DetectionReport:
    """Run ``detect_batch(list of RGB images) → [(boxes, scores)]`` over annotated images and score it."""


    predictions = []
    starts = range(0, len(annotations), batch_size)
    for start in tqdm(starts, desc="evaluating", disable=not progress, leave=False):
        chunk = annotations[start:start + batch_size]
        predictions += detect_batch([read_annotated_image(images_root, item.image_path) for item in chunk])
    return evaluate_detections(predictions, ground_truths_from_annotations(annotations), iou_threshold)


def evaluate_model(model: str, annotation_file: str, images_root: Optional[str] = None,
                   variant: Optional[str] = None, score_threshold: float = 0.05, iou_threshold: float = 0.5,
                   min_face_size: float = 0.0, batch_size: int = 16, cpu_threads: int = 2,
                   progress: bool = False) -> DetectionReport:
    """AP of a detector on an annotation file. ``model``: an exported folder (has ``model.yaml``; run by
    :class:`blazeface_paddle.inference.predictor.DetectorPredictor`) or a training checkpoint / ``.pdparams``."""



    annotations = read_annotations(annotation_file, min_face_size=min_face_size)
    images_root = resolve_images_root(annotation_file, annotations, images_root)
    if os.path.isfile(os.path.join(model, MODEL_CONFIG_NAME)):
        predictor = DetectorPredictor(model, cpu_threads=cpu_threads, score_threshold=score_threshold)

        def detect_batch(images):
            found = predictor.detect_batch(images)
            return [(np.array([face.box for face in faces], np.float32).reshape(-1, 4),
                     np.array([face.score for face in faces], np.float32)) for faces in found]
    else:
        from blazeface_paddle.conversion.weights import load_detector  # heavy (paddle): imported on first use

        detect_batch = LayerDetector(load_detector(model, variant), score_threshold=score_threshold).detect_batch
    return evaluate_on_annotations(detect_batch, annotations, images_root, batch_size=batch_size,
                                   iou_threshold=iou_threshold, progress=progress)
