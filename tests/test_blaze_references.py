"""Our whole BlazeFace detector (shipped Paddle inference models: letterbox, network, decode, weighted NMS,
mapping back to pixels) on the real photos, against two references that share none of its code:

1. MediaPipe's own tflite graphs run by LiteRT, decoded by a deliberately separate, minimal reading of
   MediaPipe's face-detection graph written out below from its documented options: ImageToTensor (keep
   aspect ratio, zero border, bilinear, [-1, 1]), SsdAnchors (fixed-size anchors, offset 0.5),
   TensorsToDetections (x_center = raw_x / x_scale · anchor_w + anchor_x, … ; sigmoid of scores clipped to
   ±100; x/y/w/h scales = input size, 128 or 192), weighted NonMaxSuppression (IoU 0.3) and
   DetectionLetterboxRemoval.  MediaPipe itself does not install here; this is its arithmetic, not ours.
2. OpenCV's YuNet (cv2.FaceDetectorYN, tests/data/yunet): another detector altogether, so only the face's
   place (box IoU) and its eyes are compared.
"""
from __future__ import annotations

import json
import pathlib

import cv2
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from arcface_paddle.core.images import read_image
from blazeface_paddle.inference.predictor import DetectorPredictor, select

REPO = pathlib.Path(__file__).resolve().parent.parent
TFLITE_DIR = REPO / "tests" / "data" / "blazeface"
YUNET = REPO / "tests" / "data" / "yunet" / "face_detection_yunet_2023mar.onnx"

# MediaPipe face_detection_{short,full}_range graph options (input size, anchor grid, score threshold).
MEDIAPIPE = {
    "short_range": {"size": 128, "grids": [(16, 2), (8, 6)], "min_score": 0.5},   # strides 8, 16 ×3 layers
    "full_range": {"size": 192, "grids": [(48, 1)], "min_score": 0.6},             # stride 4, one anchor
}


def mediapipe_canvas(image_rgb: np.ndarray, size: int) -> tuple:
    """ImageToTensor with keep_aspect_ratio: scale to fit, centre on a zero border, bilinear warp."""
    height, width = image_rgb.shape[:2]
    scale = size / max(height, width)
    pad_x, pad_y = (size - width * scale) / 2, (size - height * scale) / 2
    matrix = np.array([[scale, 0, pad_x], [0, scale, pad_y]], np.float32)
    canvas = cv2.warpAffine(image_rgb, matrix, (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return canvas, (scale, pad_x, pad_y)


def mediapipe_decode(canvas: np.ndarray, variant: str) -> list:
    """[(score, box x1 y1 x2 y2, eyes 2×2)] in normalised input coordinates, highest score first."""
    options = MEDIAPIPE[variant]
    size = options["size"]
    interpreter = Interpreter(model_path=str(TFLITE_DIR / f"face_detection_{variant}.tflite"))
    interpreter.allocate_tensors()
    tensor = canvas.astype(np.float32)[None] / 127.5 - 1.0                  # output_tensor_float_range [-1, 1]
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor)
    interpreter.invoke()
    outputs = [interpreter.get_tensor(d["index"])[0] for d in interpreter.get_output_details()]
    raw = next(o for o in outputs if o.shape[-1] == 16).astype(np.float64)
    logits = next(o for o in outputs if o.shape[-1] == 1)[:, 0].astype(np.float64)
    anchors = [((x + 0.5) / cells, (y + 0.5) / cells)
               for cells, per_cell in options["grids"] for y in range(cells) for x in range(cells)
               for _ in range(per_cell)]
    candidates = []
    for (anchor_x, anchor_y), row, logit in zip(anchors, raw, logits):
        score = 1.0 / (1.0 + np.exp(-np.clip(logit, -100.0, 100.0)))
        if score < options["min_score"]:
            continue
        # anchor w = h = 1 (fixed_anchor_size); reverse_output_order: x before y, w before h
        x_center, y_center = row[0] / size + anchor_x, row[1] / size + anchor_y
        w, h = row[2] / size, row[3] / size
        box = np.array([x_center - w / 2, y_center - h / 2, x_center + w / 2, y_center + h / 2])
        eyes = np.array([[row[4] / size + anchor_x, row[5] / size + anchor_y],
                         [row[6] / size + anchor_x, row[7] / size + anchor_y]])
        candidates.append((float(score), box, eyes))
    return weighted_nms(candidates)


def mediapipe_detections(image_rgb: np.ndarray, variant: str) -> list:
    """The whole graph on one photo: [(score, box, eyes)] in image pixels (DetectionLetterboxRemoval)."""
    size = MEDIAPIPE[variant]["size"]
    canvas, (scale, pad_x, pad_y) = mediapipe_canvas(image_rgb, size)
    return [(score, unletterbox(box.reshape(2, 2), size, scale, pad_x, pad_y).ravel(),
             unletterbox(eyes, size, scale, pad_x, pad_y)) for score, box, eyes in mediapipe_decode(canvas, variant)]


def unletterbox(points: np.ndarray, size: int, scale: float, pad_x: float, pad_y: float) -> np.ndarray:
    return (points * size - [pad_x, pad_y]) / scale


def iou(a, b) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def weighted_nms(candidates: list, threshold: float = 0.3) -> list:
    """MediaPipe's WEIGHTED suppression: the best remaining detection absorbs every candidate overlapping it
    by IoU > threshold; its box and keypoints become their score-weighted mean, its score stays the best."""
    remaining = sorted(candidates, key=lambda c: -c[0])
    merged = []
    while remaining:
        best = remaining[0]
        group = [c for c in remaining if iou(best[1], c[1]) > threshold]
        remaining = [c for c in remaining if iou(best[1], c[1]) <= threshold]
        weights = np.array([c[0] for c in group])
        merged.append((best[0], sum(w * c[1] for w, c in zip(weights, group)) / weights.sum(),
                       sum(w * c[2] for w, c in zip(weights, group)) / weights.sum()))
    return merged


@pytest.fixture(scope="module")
def photos(faces_dir, nonfaces_dir):
    return {path.name: read_image(path) for folder in (faces_dir, nonfaces_dir) for path in sorted(folder.iterdir())}


@pytest.fixture(scope="module", params=["openvino", "onednn"])
def predictors(request):
    """Both CPU engines (OpenVINO is the default): each must reproduce LiteRT."""
    found = {variant: DetectorPredictor(str(REPO / "inference_model" / f"blazeface_{variant}"), cpu_threads=2,
                                        cpu_engine=request.param) for variant in MEDIAPIPE}
    assert all(predictor.engine == request.param for predictor in found.values())
    return found


@pytest.fixture(scope="module")
def ours(predictors, photos):
    return {variant: {name: predictor.detect(image) for name, image in photos.items()}
            for variant, predictor in predictors.items()}


@pytest.mark.parametrize("variant", list(MEDIAPIPE))
def test_decode_and_nms_equal_mediapipe_on_the_same_input(predictors, photos, variant):
    """Both given MediaPipe's own input canvas: our exported program's decoding + our threshold and weighted
    NMS must give MediaPipe's detections, to LiteRT-vs-Paddle float noise."""
    predictor = predictors[variant]
    assert predictor.score_threshold == MEDIAPIPE[variant]["min_score"] and predictor.nms == "weighted"
    faces_checked = 0
    for name, image in photos.items():
        canvas, _ = mediapipe_canvas(image, MEDIAPIPE[variant]["size"])
        reference = mediapipe_decode(canvas, variant)
        boxes, keypoints, scores = select(*(output[0] for output in predictor.run(canvas[None])),
                                          score_threshold=predictor.score_threshold, nms=predictor.nms,
                                          nms_threshold=predictor.nms_threshold)
        assert len(scores) == len(reference), (name, len(scores), len(reference))
        for box, points, score, (ref_score, ref_box, ref_eyes) in zip(boxes, keypoints, scores, reference):
            # measured: 1e-7 apart; 2e-5 is 0.003 input pixels, the raw-output tolerance of test_blaze_tflite
            np.testing.assert_allclose(box, ref_box, atol=2e-5, err_msg=name)
            np.testing.assert_allclose(points[:2], ref_eyes, atol=2e-5, err_msg=name)
            assert abs(score - ref_score) < 1e-4, name
            faces_checked += 1
    assert faces_checked == 6                       # one face in each portrait, none in the cat or the coffee


@pytest.mark.parametrize("variant", list(MEDIAPIPE))
def test_detector_on_photos_equals_mediapipe_graph_run_by_litert(ours, photos, variant):
    faces_checked = 0
    for name, image in photos.items():
        reference = mediapipe_detections(image, variant)
        detected = ours[variant][name]
        assert len(detected) == len(reference), (name, len(detected), len(reference))
        for face, (score, box, eyes) in zip(detected, reference):
            width = box[2] - box[0]
            # Same network and arithmetic (previous test); what differs is the resampling: our letterbox
            # shrinks with INTER_AREA, MediaPipe's ImageToTensor warps bilinearly (aliasing when a 2204-px
            # photo becomes 128 px).  Measured: boxes and eyes within 4.7% of the face width, IoU >= 0.887,
            # scores within 0.1; a misplaced anchor (half a cell), swapped axes or a wrong letterbox
            # offset is 10% or more.
            assert iou(face.box, box) > 0.85, (name, face.box, box)
            np.testing.assert_allclose(face.box, box, atol=0.06 * width, err_msg=name)
            np.testing.assert_allclose(face.keypoints[:2], eyes, atol=0.06 * width, err_msg=name)
            assert abs(face.score - score) < 0.15, (name, face.score, score)
            faces_checked += 1
    assert faces_checked == 6


@pytest.fixture(scope="module")
def yunet_faces(photos):
    if not YUNET.is_file():
        pytest.skip(f"{YUNET} missing (see tests/data/yunet/SOURCES.md)")
    detector = cv2.FaceDetectorYN.create(str(YUNET), "", (320, 320), 0.6, 0.3, 5000)
    found = {}
    for name, image in photos.items():
        detector.setInputSize((image.shape[1], image.shape[0]))
        _, faces = detector.detect(np.ascontiguousarray(image[:, :, ::-1]))
        found[name] = [] if faces is None else list(faces)
    return found


@pytest.mark.parametrize("variant", list(MEDIAPIPE))
def test_detector_agrees_with_opencv_yunet(ours, yunet_faces, variant):
    faces_checked = 0
    for name, reference in yunet_faces.items():
        detected = ours[variant][name]
        assert len(detected) == len(reference), (name, len(detected), len(reference))
        for face, row in zip(detected, reference):
            x, y, w, h = row[:4]
            assert iou(face.box, (x, y, x + w, y + h)) >= 0.5, (name, face.box, row[:4])
            # YuNet's first two landmarks are the right eye (image left) and the left eye, as ours.
            yunet_eyes = row[4:8].reshape(2, 2)
            eye_distance = np.linalg.norm(yunet_eyes[1] - yunet_eyes[0])
            error = np.linalg.norm(face.keypoints[:2] - yunet_eyes, axis=1)
            # Two detectors trained on different labels: measured IoU 0.68-0.80, eyes within 0.16 of the eye
            # distance; a box on the wrong face or swapped eyes (error = 1 eye distance) fails.
            assert error.max() < 0.25 * eye_distance, (name, error, eye_distance)
            faces_checked += 1
    assert faces_checked == 6                       # YuNet, too, finds one face per portrait and none elsewhere


def test_stored_landmarks_are_what_yunet_finds(yunet_faces):
    """faces_landmarks.json (used by the alignment and SFace references) is YuNet's output, still."""
    record = json.loads((REPO / "tests" / "data" / "faces_landmarks.json").read_text(encoding="utf-8"))["faces"]
    for name, stored in record.items():
        row = max(yunet_faces[name], key=lambda r: r[2] * r[3])
        np.testing.assert_allclose(np.ravel(stored["landmarks"]), row[4:14], atol=0.02, err_msg=name)
