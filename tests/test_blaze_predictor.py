"""Shipped BlazeFace inference models: real photos, exported == eager, reproducible export, bad input."""
import pathlib

import cv2
import numpy as np
import paddle
import pytest

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import read_image
from blazeface_paddle.conversion.export import DecodingBlazeFace
from blazeface_paddle.conversion.tflite_import import convert_tflite, import_tflite_model
from blazeface_paddle.inference.letterbox import letterbox
from blazeface_paddle.inference.predictor import DetectorPredictor

REPO = pathlib.Path(__file__).resolve().parent.parent
MODELS = {variant: REPO / "inference_model" / f"blazeface_{variant}" for variant in ("short_range", "full_range")}
TFLITE_DIR = REPO / "tests" / "data" / "blazeface"


@pytest.fixture(scope="module")
def predictors():
    paddle.set_device("cpu")
    return {variant: DetectorPredictor(path, cpu_threads=2) for variant, path in MODELS.items()}


@pytest.fixture(scope="module")
def photos(faces_dir, nonfaces_dir):
    faces = {path.name: read_image(path) for path in sorted(faces_dir.iterdir())}
    nonfaces = {path.name: read_image(path) for path in sorted(nonfaces_dir.iterdir())}
    assert len(faces) == 6 and len(nonfaces) == 2
    return faces, nonfaces


@pytest.mark.parametrize("variant", ["short_range", "full_range"])
def test_one_face_per_portrait_none_elsewhere(predictors, photos, variant):
    faces, nonfaces = photos
    for name, image in faces.items():
        found = predictors[variant].detect(image)
        assert len(found) == 1, f"{variant} found {len(found)} faces in {name}"
        face = found[0]
        x1, y1, x2, y2 = face.box
        height, width = image.shape[:2]
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height and face.score >= 0.5
        assert min(x2 - x1, y2 - y1) > 0.1 * min(height, width), f"implausibly small box in {name}"
        right_eye, left_eye, nose, mouth = face.keypoints[:4]
        # the person's right eye is on the image's left; eyes above the nose above the mouth, all in the box
        assert right_eye[0] < nose[0] < left_eye[0], name
        assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1], name
        assert (face.keypoints[:4, 0] > x1).all() and (face.keypoints[:4, 0] < x2).all(), name
    for name, image in nonfaces.items():
        assert predictors[variant].detect(image) == [], f"{variant} found a face in {name}"


def test_short_and_full_range_agree_on_face_position(predictors, photos):
    faces, _ = photos
    for name, image in faces.items():
        short = np.array(predictors["short_range"].detect(image)[0].box)
        full = np.array(predictors["full_range"].detect(image)[0].box)
        centre_gap = np.abs((short[:2] + short[2:]) / 2 - (full[:2] + full[2:]) / 2).max()
        assert centre_gap < 0.25 * (short[2] - short[0]), name


@pytest.mark.parametrize("variant", ["short_range", "full_range"])
def test_exported_program_equals_eager(predictors, photos, variant):
    network, _ = convert_tflite(str(TFLITE_DIR / f"face_detection_{variant}.tflite"), variant)
    eager = DecodingBlazeFace(network)
    eager.eval()
    size = network.variant.input_size
    faces, nonfaces = photos
    batch = np.stack([letterbox(faces["obama.jpg"], size)[0], letterbox(nonfaces["coffee.png"], size)[0]])
    exported = predictors[variant].run(batch)
    with paddle.no_grad():
        tensor = paddle.to_tensor(batch.astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1.0)
        reference = [t.numpy() for t in eager(tensor)]
    names = ("boxes", "keypoints", "scores")
    for name, ours, theirs in zip(names, exported, reference):
        assert ours.shape == theirs.shape, name
        np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=1e-3, err_msg=name)
    assert reference[2][0].max() > 0.7 > reference[2][1].max()


def test_export_is_reproducible_and_matches_shipped_model(tmp_path):
    import onnxruntime

    config = import_tflite_model(str(TFLITE_DIR / "face_detection_short_range.tflite"), "short_range",
                                 str(tmp_path / "short"), checkpoint_path=str(tmp_path / "short.pdparams"), onnx=True)
    shipped = MODELS["short_range"]
    for name in ("inference.pdiparams", "inference.pdmodel", "model.yaml"):
        assert (tmp_path / "short" / name).read_bytes() == (shipped / name).read_bytes(), name
    assert config.detector["num_anchors"] == 896 and config.source["licence"] == "Apache-2.0"
    network, _ = convert_tflite(str(TFLITE_DIR / "face_detection_short_range.tflite"), "short_range")
    assert set(paddle.load(str(tmp_path / "short.pdparams"))) == set(network.state_dict())
    # the ONNX file written beside the program gives the same outputs
    session = onnxruntime.InferenceSession(str(tmp_path / "short" / "inference.onnx"),
                                           providers=["CPUExecutionProvider"])
    batch = np.random.default_rng(1).integers(0, 256, (2, 128, 128, 3)).astype(np.uint8)
    tensor = (batch.astype(np.float32).transpose(0, 3, 1, 2) - 127.5) / 127.5
    for ours, theirs in zip(DetectorPredictor(tmp_path / "short").run(batch),
                            session.run(None, {session.get_inputs()[0].name: tensor})):
        np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=1e-3)


def test_odd_images_give_answers_not_crashes(predictors, photos, tmp_path):
    detector = predictors["full_range"]
    portrait = photos[0]["obama.jpg"]
    expected = detector.detect(portrait)[0].box
    gray = cv2.cvtColor(portrait, cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([portrait, np.full(portrait.shape[:2], 255, np.uint8)])
    deep = portrait.astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "deep.png"), deep[:, :, ::-1])          # a real 16-bit PNG file
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    reread = read_image(tmp_path / "deep.png")
    assert reread.dtype == np.uint8 and np.abs(reread.astype(int) - portrait).max() <= 1
    for name, image in [("gray", gray), ("rgba", rgba), ("16-bit", deep), ("16-bit file", reread),
                        ("gray file", read_image(tmp_path / "gray.png"))]:
        found = detector.detect(image)
        assert len(found) == 1, name
        np.testing.assert_allclose(found[0].box, expected, atol=0.03 * (expected[2] - expected[0]), err_msg=name)
    assert detector.detect(np.full((1, 1, 3), 128, np.uint8)) == []
    huge = np.zeros((8000, 8000, 3), np.uint8)
    huge[3000:3000 + portrait.shape[0] * 3, 3000:3000 + portrait.shape[1] * 3] = cv2.resize(
        portrait, (portrait.shape[1] * 3, portrait.shape[0] * 3))
    found = detector.detect(huge)
    assert len(found) == 1 and 3000 < found[0].box[0] < found[0].box[2] < 3000 + portrait.shape[1] * 3


def test_tiling_finds_a_small_face_in_a_big_photo(predictors, photos):
    detector = predictors["full_range"]
    face = cv2.resize(photos[0]["grace_hopper.jpg"], (128, 150))
    canvas = np.full((1600, 2400, 3), 90, np.uint8)
    canvas[1200:1350, 1900:2028] = face
    assert detector.detect(canvas) == []                 # 128 px in 2400 → ~10 px at 192: too small
    found = detector.detect(canvas, tile_size=600)
    assert len(found) == 1
    x1, y1, x2, y2 = found[0].box
    assert 1890 < x1 < x2 < 2040 and 1190 < y1 < y2 < 1360


def test_bad_files_and_models_are_clear_errors(tmp_path, predictors):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(ToolkitError, match="broken.jpg"):
        read_image(broken)
    with pytest.raises(ToolkitError, match="not found"):
        read_image(tmp_path / "missing.jpg")
    with pytest.raises(ToolkitError, match="shape"):
        predictors["short_range"].detect(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(ToolkitError, match="unknown NMS"):
        DetectorPredictor(MODELS["short_range"], nms="soft")
    with pytest.raises(ToolkitError, match="score threshold"):
        DetectorPredictor(MODELS["short_range"], score_threshold=1.5)
    with pytest.raises(ToolkitError, match="model folder not found"):
        DetectorPredictor(tmp_path / "nowhere")
    recognition = tmp_path / "rec"
    recognition.mkdir()
    for name in ("inference.pdmodel", "inference.pdiparams"):
        (recognition / name).write_bytes((MODELS["short_range"] / name).read_bytes())
    (recognition / "model.yaml").write_text("task: recognition\nnetwork: MobileFaceNet_128\ninput_size: [112, 112]\n")
    with pytest.raises(ToolkitError, match="not a face detector"):
        DetectorPredictor(recognition)


def test_detect_files_writes_drawings(tmp_path, faces_dir, nonfaces_dir):
    from arcface_paddle.cli.detect import detect_files

    images = [str(faces_dir / "biden.jpg"), str(nonfaces_dir / "coffee.png")]
    results = detect_files(images, model=str(MODELS["short_range"]), draw_dir=str(tmp_path / "drawn"))
    assert [len(results[path]) for path in images] == [1, 0]
    face = results[images[0]][0]
    assert set(face["keypoints"]) == {"right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear", "left_ear"}
    drawn = cv2.imread(str(tmp_path / "drawn" / "biden.jpg"))
    assert drawn.shape[:2] == read_image(images[0]).shape[:2]
    with pytest.raises(ToolkitError, match="not found"):
        detect_files([str(tmp_path / "missing.png")], model=str(MODELS["short_range"]))


def test_cli_lists_bad_files_and_refuses_unwritable_outputs(tmp_path, faces_dir, monkeypatch, capsys):
    import json
    import shutil
    import sys

    from arcface_paddle.cli import detect

    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(faces_dir / "biden.jpg", folder / "biden.jpg")
    (folder / "broken.jpg").write_bytes((faces_dir / "obama.jpg").read_bytes()[:400])
    (folder / "notes.txt").write_text("not a photo")
    out_json = tmp_path / "faces.json"
    monkeypatch.setattr(sys, "argv", ["detect", str(folder), "--model", str(MODELS["short_range"]),
                                      "--json", str(out_json), "--draw", str(tmp_path / "drawn")])
    with pytest.raises(ToolkitError, match="1 of 2 images could not be read"):
        detect.main()
    err = capsys.readouterr().err
    assert f"failed {folder / 'broken.jpg'}: not a readable image" in err
    # the good photo was still processed, drawn and written
    assert [len(faces) for faces in json.loads(out_json.read_text()).values()] == [1]
    assert (tmp_path / "drawn" / "biden.jpg").is_file()

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for flag, target in (("--json", blocker / "x.json"), ("--draw", blocker / "drawn")):
        monkeypatch.setattr(sys, "argv", ["detect", str(faces_dir / "biden.jpg"), flag, str(target)])
        with pytest.raises(ToolkitError, match="output folder is not writable"):
            detect.main()
    monkeypatch.setattr(sys, "argv", ["detect", str(tmp_path / "drawn" / "nothing_here")])
    (tmp_path / "drawn" / "nothing_here").mkdir()
    with pytest.raises(ToolkitError, match="no images found"):
        detect.main()
