"""The official WIDER FACE evaluation: AP on the Easy / Medium / Hard validation subsets.

Written here from the description of the official ``eval_tools`` (MATLAB ``wider_eval.m`` and its Python port
used by RetinaFace / SCRFD / YuNet tables), so numbers are comparable with published ones:

* ground truth: ``wider_face_val.mat`` (every face box, ``x y w h``) and ``wider_{easy,medium,hard}_val.mat``
  (per image, the 1-based indices of the faces that count in that subset — the subsets cannot be recomputed from
  the boxes); faces outside the subset are *ignored*: a detection whose best match is such a face is neither a
  true nor a false positive;
* scores of all detections over the whole set are min–max normalised to [0, 1];
* per image, detections by falling score: a detection whose best IoU (pixel-inclusive, ``w = x2 - x1 + 1``)
  reaches 0.5 marks that face found (a second detection of a found face stays a proposal: a false positive);
* 1000 thresholds ``1 - t/1000``: proposals and found faces up to the last detection scoring at least the
  threshold, summed over images; precision = found / proposals, recall = found / faces in the subset;
* AP: VOC all-point interpolation of that curve.  Where no detection reaches a threshold the official MATLAB
  gets 0/0 = NaN precision and its ``max`` skips it; 0 gives the same AP here (numpy's ``max`` would spread NaN).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Tuple

import numpy as np
import scipy.io
from prettytable import PrettyTable
from tqdm import tqdm

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import read_image
from arcface_paddle.core.safe_io import atomic_write

SUBSETS = ("easy", "medium", "hard")
THRESHOLDS = 1000
GROUND_TRUTH_FILES = {"all": "wider_face_val.mat", "easy": "wider_easy_val.mat", "medium": "wider_medium_val.mat",
                      "hard": "wider_hard_val.mat"}


@dataclasses.dataclass
class WiderImage:
    event: str
    name: str                      # file name without extension, as in the .mat files
    boxes: np.ndarray              # N×4 x, y, w, h
    keep: Dict[str, np.ndarray]    # subset → N bool: faces that count in that subset


def _cells(value) -> list:
    """A MATLAB cell array as loadmat gives it (an N×1 or 1×N object array) → list of its elements."""
    return list(np.asarray(value, dtype=object).reshape(-1))


def _text(value) -> str:
    return str(np.asarray(value).reshape(-1)[0])


def load_ground_truth(folder: str) -> List[WiderImage]:
    """Images of the official validation ground truth (``eval_tools/ground_truth`` folder)."""
    loaded = {}
    for subset, name in GROUND_TRUTH_FILES.items():
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise ToolkitError(f"{path}: missing; the WIDER FACE protocol needs the official ground_truth folder "
                               f"(wider_face_val.mat and wider_easy/medium/hard_val.mat)")
        try:
            loaded[subset] = scipy.io.loadmat(path)
        except (ValueError, TypeError, OSError, scipy.io.matlab.MatReadError) as error:
            raise ToolkitError(f"{path}: not a readable MATLAB file ({error})") from None
    full = loaded["all"]
    try:
        events = [_text(event) for event in _cells(full["event_list"])]
        images = []
        for number, event in enumerate(events):
            files = _cells(_cells(full["file_list"])[number])
            boxes = _cells(_cells(full["face_bbx_list"])[number])
            subsets = {subset: _cells(_cells(loaded[subset]["gt_list"])[number]) for subset in SUBSETS}
            for index, file_name in enumerate(files):
                face_boxes = np.asarray(boxes[index], np.float64).reshape(-1, 4)
                keep = {}
                for subset in SUBSETS:
                    mask = np.zeros(len(face_boxes), bool)
                    kept = np.asarray(subsets[subset][index], np.int64).reshape(-1)
                    if kept.size and (kept.min() < 1 or kept.max() > len(face_boxes)):
                        raise ToolkitError(f"{folder}: {GROUND_TRUTH_FILES[subset]} names face {kept.max()} of "
                                           f"{event}/{_text(file_name)}, which has {len(face_boxes)} faces")
                    mask[kept - 1] = True
                    keep[subset] = mask
                images.append(WiderImage(event, _text(file_name), face_boxes, keep))
    except (KeyError, IndexError) as error:
        raise ToolkitError(f"{folder}: the .mat files do not have the WIDER FACE layout ({error})") from None
    return images


def box_overlaps(boxes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """IoU of x1, y1, x2, y2 ``boxes`` (N×4) with one box, pixel-inclusive as the official tool computes it."""
    width = np.minimum(boxes[:, 2], query[2]) - np.maximum(boxes[:, 0], query[0]) + 1
    height = np.minimum(boxes[:, 3], query[3]) - np.maximum(boxes[:, 1], query[1]) + 1
    inter = width * height
    areas = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    union = areas + (query[2] - query[0] + 1) * (query[3] - query[1] + 1) - inter
    overlap = inter / union
    overlap[(width <= 0) | (height <= 0)] = 0.0
    return overlap


def image_eval(predictions: np.ndarray, boxes: np.ndarray, keep: np.ndarray, iou_threshold: float) -> tuple:
    """(found faces after each detection, proposal flag per detection: 1 counts, -1 matched an ignored face).

    ``predictions`` K×5 ``x y w h score`` by falling score; ``boxes`` N×4 ``x y w h``.
    """
    predicted = np.concatenate([predictions[:, :2], predictions[:, :2] + predictions[:, 2:4]], axis=1)
    truth = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:4]], axis=1)
    found = np.zeros(len(truth))
    recall_after = np.zeros(len(predicted))
    proposals = np.ones(len(predicted))
    for number, box in enumerate(predicted):
        overlaps = box_overlaps(truth, box)
        best = int(np.argmax(overlaps))
        if overlaps[best] >= iou_threshold:
            if not keep[best]:
                found[best], proposals[number] = -1, -1
            elif found[best] == 0:
                found[best] = 1
        recall_after[number] = np.sum(found == 1)
    return recall_after, proposals


def image_pr(predictions: np.ndarray, proposals: np.ndarray, recall_after: np.ndarray,
             thresholds: int = THRESHOLDS) -> np.ndarray:
    """thresholds × 2: (proposals, found faces) counting detections up to the last one scoring >= each threshold."""
    info = np.zeros((thresholds, 2))
    for step in range(thresholds):
        reached = np.where(predictions[:, 4] >= 1 - (step + 1) / thresholds)[0]
        if len(reached):
            last = reached[-1]
            info[step] = np.sum(proposals[:last + 1] == 1), recall_after[last]
    return info


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.where(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def normalise_scores(predictions: Dict[Tuple[str, str], np.ndarray]) -> Dict[Tuple[str, str], np.ndarray]:
    """Copies with scores min–max normalised over the whole set, each sorted by falling score."""
    scores = np.concatenate([p[:, 4] for p in predictions.values() if len(p)] or [np.zeros(0)])
    low, high = (float(scores.min()), float(scores.max())) if len(scores) else (0.0, 1.0)
    spread = high - low if high > low else 1.0
    out = {}
    for key, value in predictions.items():
        value = np.asarray(value, np.float64).reshape(-1, 5).copy()
        value[:, 4] = (value[:, 4] - low) / spread
        out[key] = value[np.argsort(-value[:, 4], kind="stable")]
    return out


@dataclasses.dataclass
class WiderReport:
    ap: Dict[str, float]           # subset → AP
    num_faces: Dict[str, int]
    num_images: int
    iou_threshold: float

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def table(self) -> str:
        table = PrettyTable(["WIDER FACE subset", "faces", f"AP@{self.iou_threshold:g}"])
        for subset in SUBSETS:
            table.add_row([subset.capitalize(), self.num_faces[subset], f"{100 * self.ap[subset]:.2f}"])
        return table.get_string()


def evaluate_wider(predictions: Dict[Tuple[str, str], np.ndarray], ground_truth: List[WiderImage],
                   iou_threshold: float = 0.5, thresholds: int = THRESHOLDS) -> WiderReport:
    """AP per subset.  ``predictions[(event, name)]`` = K×5 ``x y w h score`` (an image without entry: none)."""
    predictions = normalise_scores(predictions)
    aps, faces = {}, {}
    for subset in SUBSETS:
        curve, count = np.zeros((thresholds, 2)), 0
        for image in ground_truth:
            keep = image.keep[subset]
            count += int(keep.sum())
            found = predictions.get((image.event, image.name), np.zeros((0, 5)))
            if len(image.boxes) == 0 or len(found) == 0:
                continue
            recall_after, proposals = image_eval(found, image.boxes, keep, iou_threshold)
            curve += image_pr(found, proposals, recall_after, thresholds)
        precision = np.divide(curve[:, 1], curve[:, 0], out=np.zeros(thresholds), where=curve[:, 0] > 0)
        recall = curve[:, 1] / count if count else np.zeros(thresholds)
        aps[subset], faces[subset] = voc_ap(recall, precision), count
    return WiderReport(aps, faces, len(ground_truth), iou_threshold)


def write_predictions(folder: str, predictions: Dict[Tuple[str, str], np.ndarray]) -> None:
    """The official submission layout: ``<event>/<name>.txt`` with the name, the count, then ``x y w h score``."""
    for (event, name), found in predictions.items():
        os.makedirs(os.path.join(folder, event), exist_ok=True)
        with atomic_write(os.path.join(folder, event, name + ".txt"), "w") as handle:
            handle.write(f"{name}\n{len(found)}\n")
            for x, y, w, h, score in np.asarray(found, np.float64).reshape(-1, 5):
                handle.write(f"{x:.1f} {y:.1f} {w:.1f} {h:.1f} {score:.5f}\n")


def read_predictions(folder: str, ground_truth: List[WiderImage]) -> Dict[Tuple[str, str], np.ndarray]:
    """Prediction files in the submission layout for every ground-truth image (a missing file: no detections)."""
    out = {}
    for image in ground_truth:
        path = os.path.join(folder, image.event, image.name + ".txt")
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as handle:
            lines = [line.strip() for line in handle if line.strip()]
        try:
            count = int(lines[1]) if len(lines) > 1 else 0
            rows = [[float(v) for v in line.split()[:5]] for line in lines[2:2 + count]]
            values = np.asarray(rows, np.float64).reshape(-1, 5)
        except ValueError as error:
            raise ToolkitError(f"{path}: not a WIDER FACE prediction file ({error})") from None
        out[(image.event, image.name)] = values
    return out


def detect_wider(detect, ground_truth: List[WiderImage], images_root: str, progress: bool = False):
    """Run ``detect(RGB image) → (boxes K×4 x1 y1 x2 y2, scores K)`` on every ground-truth image
    (``<images_root>/<event>/<name>.jpg``) → predictions for :func:`evaluate_wider`."""
    predictions = {}
    for image in tqdm(ground_truth, desc="WIDER FACE", disable=not progress, leave=False):
        path = os.path.join(images_root, image.event, image.name + ".jpg")
        boxes, scores = detect(read_image(path))
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        predictions[(image.event, image.name)] = np.concatenate(
            [boxes[:, :2], boxes[:, 2:] - boxes[:, :2], np.asarray(scores, np.float64).reshape(-1, 1)], axis=1)
    return predictions
