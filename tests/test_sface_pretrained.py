"""The shipped SFace recognizer (inference_model/mobilenet_sface) against the original runtimes, on real photos.

tests/data/sface_reference.npz holds, for tests/data/faces, the crops OpenCV itself aligns
(cv2.FaceRecognizerSF.alignCrop from the stored YuNet landmarks) and their embeddings from onnxruntime and
cv2.FaceRecognizerSF running the original ONNX file (made by tests/data/make_sface_reference.py, which imports
nothing of ours); the 38.7 MB ONNX file itself is not in the repo.
"""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import paddle
import pytest

from arcface_paddle.core.model_yaml import load_model_config, params_fingerprint
from arcface_paddle.importers import load_layer_from_inference_model
from arcface_paddle.inference.recognizer import RecognitionPredictor
from arcface_paddle.pipeline.face_alignment import align_face

SFACE_SHA256 = "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79"
OPENCV_SFACE_THRESHOLD = 0.363   # OpenCV zoo's cosine threshold for "same person" with this model


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def model_dir(repo_root):
    return str(repo_root / "inference_model" / "mobilenet_sface")


@pytest.fixture(scope="module")
def reference(repo_root):
    data = np.load(repo_root / "tests" / "data" / "sface_reference.npz")
    return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def predicted(model_dir, reference):
    return RecognitionPredictor(model_dir, cpu_threads=2).embed(reference["crops"])


def test_model_yaml_records_preprocessing_and_source(model_dir, reference):
    config = load_model_config(model_dir)
    assert (config.task, config.network, config.format) == ("recognition", "MobileNetV1", "legacy")
    assert config.input_size == [112, 112] and config.embedding_size == 128
    # Measured, not guessed: OpenCV feeds the graph RGB, (x - 127.5) / 128 (see importers/sface.py).
    assert (config.color_order, config.mean, config.std) == ("RGB", [127.5] * 3, [128.0] * 3)
    assert config.source["sha256"] == SFACE_SHA256 == str(reference["onnx_sha256"])
    assert config.source["licence"] == "Apache-2.0"
    assert config.model_id == params_fingerprint(config.params_path(model_dir))


def test_shipped_predictor_matches_original_runtimes(predicted, reference):
    assert predicted.shape == (6, 128)
    assert cosine_rows(predicted, reference["onnxruntime"]).min() >= 0.9999
    assert cosine_rows(predicted, reference["opencv"]).min() >= 0.9999
    np.testing.assert_allclose(predicted, reference["onnxruntime"], atol=2e-3)


def test_eager_network_equals_shipped_predictor(model_dir, predicted, reference):
    paddle.set_device("cpu")
    layer, config = load_layer_from_inference_model(model_dir)
    pixels = (reference["crops"].astype(np.float32) - config.mean[0]) / config.std[0]
    with paddle.no_grad():
        eager = layer(paddle.to_tensor(pixels.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(eager, predicted, rtol=1e-4, atol=1e-4)
    assert cosine_rows(eager, reference["onnxruntime"]).min() >= 0.9999


def test_same_person_scores_clearly_above_different_people(predicted, reference):
    names = [str(name) for name in reference["names"]]
    unit = predicted / np.linalg.norm(predicted, axis=1, keepdims=True)
    scores = unit @ unit.T
    obama = names.index("obama.jpg")
    same = [scores[obama, names.index(n)] for n in ("obama2.jpg", "obama3.jpg")]
    different = [scores[obama, names.index(n)] for n in ("biden.jpg", "grace_hopper.jpg", "astronaut.png")]
    assert min(same) > OPENCV_SFACE_THRESHOLD > max(different)
    assert min(same) - max(different) >= 0.3, (same, different)
    # Every other pair of different people is also below the threshold.
    people = [os.path.splitext(name)[0].rstrip("0123456789") for name in names]
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if people[i] != people[j]:
                assert scores[i, j] < OPENCV_SFACE_THRESHOLD, (names[i], names[j], scores[i, j])


def test_alignment_equals_opencv_align_crop_and_embeds_like_opencv(faces_dir, repo_root, reference, model_dir):
    """Our 5-point alignment makes OpenCV's own crop (cv2.FaceRecognizerSF.alignCrop, same ArcFace template),
    and our detector-free path — our crop, our predictor — gives OpenCV's embedding of OpenCV's crop."""
    assert str(reference["crop_source"]).startswith("cv2.FaceRecognizerSF.alignCrop")
    landmarks = json.loads((repo_root / "tests" / "data" / "faces_landmarks.json").read_text())["faces"]
    assert sorted(landmarks) == [str(name) for name in reference["names"]]
    crops = []
    for name in reference["names"]:
        rgb = cv2.cvtColor(cv2.imread(str(faces_dir / str(name)), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        crops.append(align_face(rgb, np.asarray(landmarks[str(name)]["landmarks"], np.float32)))
    crops = np.stack(crops)
    difference = np.abs(crops.astype(np.int16) - reference["crops"])
    # Both warp bilinearly with the least-squares similarity transform: equal up to rounding (measured: max 1
    # grey level, mean 0.001); a wrong template point, a transposed matrix or nearest-neighbour would not be.
    assert difference.max() <= 2 and difference.mean() < 0.02, (difference.max(), difference.mean())
    ours = RecognitionPredictor(model_dir, cpu_threads=2).embed(crops)
    assert cosine_rows(ours, reference["opencv"]).min() >= 0.9999      # measured 0.99999


def test_notice_names_every_shipped_model(repo_root):
    """inference_model/NOTICE lists each shipped folder with its source checksum and licence."""
    notice = (repo_root / "inference_model" / "NOTICE").read_text(encoding="utf-8")
    folders = sorted(path.parent for path in (repo_root / "inference_model").glob("*/model.yaml"))
    assert any(folder.name == "mobilenet_sface" for folder in folders)
    for folder in folders:
        source = load_model_config(str(folder)).source or {}
        assert f"{folder.name}/" in notice, folder.name
        assert source.get("sha256") and source["sha256"] in notice, folder.name
        assert source.get("licence") in notice, folder.name
