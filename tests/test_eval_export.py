"""Export + predictor: eager vs Paddle Inference (legacy, PIR) vs onnxruntime parity, reproducible files,
model.yaml contents, and one-line errors for bad input."""
import os

import numpy as np
import paddle
import pytest
import yaml

from arcface_paddle.backbones import get_model
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import normalize_rgb_uint8
from arcface_paddle.core.model_yaml import load_model_config, params_fingerprint
from arcface_paddle.core.predictor import Predictor
from arcface_paddle.core.program_export import ONNX_NAME, file_digests
from arcface_paddle.inference.export import export_model, recognition_config
from arcface_paddle.inference.recognizer import RecognitionPredictor
from arcface_paddle.preprocessing import TRAIN_MEAN, TRAIN_STD

SIZE = 56
TINY = dict(embedding_size=32, width_mult=0.25, input_size=SIZE, blocks=(1, 1, 1, 1, 1), feature_channels=64)


def tiny_model(seed=0):
    paddle.set_device("cpu")
    paddle.seed(seed)
    model = get_model("MobileFaceNet_128", **TINY)
    # Non-trivial BN statistics so the exported inference graph (folded BN) is really exercised.
    rng = np.random.default_rng(seed)
    for name, buffer in model.named_buffers():
        values = rng.uniform(0.5, 1.5, buffer.shape) if "variance" in name else rng.normal(0, 0.1, buffer.shape)
        buffer.set_value(values.astype("float32"))
    model.eval()
    return model


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(3).integers(0, 256, size=(6, SIZE, SIZE, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    model = tiny_model()
    root = tmp_path_factory.mktemp("exports")
    config = recognition_config("MobileFaceNet_128", input_size=[SIZE, SIZE])
    return model, {fmt: (str(root / fmt), export_model(model, str(root / fmt), config, fmt=fmt, onnx=True))
                   for fmt in ("legacy", "pir")}


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("fmt", ["legacy", "pir"])
def test_parity_eager_predictor_onnxruntime(exports, images, fmt):
    import onnxruntime

    model, folders = exports
    folder, _ = folders[fmt]
    assert sorted(os.listdir(folder)) == sorted(
        [{"legacy": "inference.pdmodel", "pir": "inference.json"}[fmt], "inference.pdiparams", ONNX_NAME, "model.yaml"])
    with paddle.no_grad():
        eager = model(paddle.to_tensor(normalize_rgb_uint8(images, TRAIN_MEAN, TRAIN_STD))).numpy()
    predictor = RecognitionPredictor(folder, cpu_threads=2, batch_size=4)    # 2 batches: 4 + 2
    embedded = predictor.embed(images)
    assert embedded.dtype == np.float32 and embedded.shape == (6, 32)
    assert _rel(embedded, eager) < 1e-4
    session = onnxruntime.InferenceSession(os.path.join(folder, ONNX_NAME), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: normalize_rgb_uint8(images, TRAIN_MEAN, TRAIN_STD)})[0]
    assert _rel(onnx_out, eager) < 1e-4
    # Without oneDNN (plain CPU kernels) the program gives the same numbers too.
    plain = Predictor(folder, enable_onednn=False).run(normalize_rgb_uint8(images, TRAIN_MEAN, TRAIN_STD))
    assert _rel(plain, eager) < 1e-4
    unit = predictor.embed(images[:2], normalize=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)


def test_onnx_opset_at_least_11(exports):
    import onnx

    folder, _ = exports[1]["legacy"]
    opsets = {entry.domain: entry.version for entry in onnx.load(os.path.join(folder, ONNX_NAME)).opset_import}
    assert opsets.get("", opsets.get("ai.onnx")) >= 11


def test_model_yaml_contents(exports):
    for fmt, (folder, written) in exports[1].items():
        with open(os.path.join(folder, "model.yaml")) as handle:
            raw = yaml.safe_load(handle)
        assert raw["task"] == "recognition" and raw["network"] == "MobileFaceNet_128"
        assert raw["format"] == fmt and raw["input_size"] == [SIZE, SIZE] and raw["embedding_size"] == 32
        assert raw["color_order"] == "RGB" and raw["mean"] == [127.5] * 3 and raw["std"] == [127.5] * 3
        assert raw["model_id"] == params_fingerprint(os.path.join(folder, "inference.pdiparams"))
        assert load_model_config(folder) == written


@pytest.mark.parametrize("fmt", ["legacy", "pir"])
def test_reexport_is_byte_identical(exports, tmp_path, fmt):
    # A second model with the same weights, built after other layers exist (so paddle's global name
    # counters differ), exported in the same process: every file must match byte for byte.
    get_model("MobileFaceNet_128", **TINY)
    twin = tiny_model()
    config = recognition_config("MobileFaceNet_128", input_size=[SIZE, SIZE])
    export_model(twin, str(tmp_path / "again"), config, fmt=fmt, onnx=True)
    assert file_digests(str(tmp_path / "again")) == file_digests(exports[1][fmt][0])
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]   # no staging leftovers


def test_different_weights_change_model_id(exports, tmp_path):
    other = export_model(tiny_model(seed=1), str(tmp_path / "other"),
                         recognition_config("MobileFaceNet_128", input_size=[SIZE, SIZE]))
    assert other.model_id != exports[1]["legacy"][1].model_id


def test_reexport_over_other_format_removes_stale_program(tmp_path):
    model, folder = tiny_model(), str(tmp_path / "m")
    config = recognition_config("MobileFaceNet_128", input_size=[SIZE, SIZE])
    export_model(model, folder, config, fmt="legacy", onnx=True)
    export_model(model, folder, config, fmt="pir")
    assert sorted(os.listdir(folder)) == ["inference.json", "inference.pdiparams", "model.yaml"]
    assert RecognitionPredictor(folder).embed(np.zeros((1, SIZE, SIZE, 3), np.uint8)).shape == (1, 32)


def test_bgr_model_gets_channels_swapped(tmp_path, images):
    model = tiny_model()
    config = recognition_config("MobileFaceNet_128", input_size=[SIZE, SIZE])
    config.color_order, config.mean, config.std = "BGR", [100.0, 120.0, 140.0], [50.0, 60.0, 70.0]
    export_model(model, str(tmp_path / "bgr"), config)
    bgr = images[..., ::-1].astype(np.float32)
    expected_input = ((bgr - np.array([100.0, 120.0, 140.0])) / np.array([50.0, 60.0, 70.0])).transpose(0, 3, 1, 2)
    with paddle.no_grad():
        eager = model(paddle.to_tensor(expected_input.astype(np.float32))).numpy()
    assert _rel(RecognitionPredictor(str(tmp_path / "bgr")).embed(images), eager) < 1e-4


def test_export_errors_leave_output_untouched(tmp_path):
    model = tiny_model()
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "keep.txt").write_text("user file")
    wrong_size = recognition_config("MobileFaceNet_128", input_size=[SIZE, SIZE], embedding_size=64)
    with pytest.raises(ToolkitError, match="embedding_size 64 .* outputs 32"):
        export_model(model, str(folder), wrong_size)
    with pytest.raises(ToolkitError, match="format"):
        export_model(model, str(folder), recognition_config("MobileFaceNet_128"), fmt="onnx")
    assert sorted(os.listdir(tmp_path)) == ["out"] and os.listdir(folder) == ["keep.txt"]


def test_predictor_bad_inputs(exports, tmp_path, images):
    folder, _ = exports[1]["legacy"]
    predictor = RecognitionPredictor(folder)
    with pytest.raises(ToolkitError, match=r"N×56×56×3, got shape 6×50×56×3"):
        predictor.embed(images[:, :50])
    with pytest.raises(ToolkitError, match="uint8"):
        predictor.embed(images.astype(np.float32))
    with pytest.raises(ToolkitError, match=r"input batch has shape 1×3×50×50, the model takes N×3×56×56"):
        predictor.predictor.run(np.zeros((1, 3, 50, 50), np.float32))
    with pytest.raises(ToolkitError, match="bf16"):
        Predictor(folder, precision="bf16")
    if not paddle.is_compiled_with_cuda():
        with pytest.raises(ToolkitError, match="paddlepaddle-gpu"):
            Predictor(folder, use_gpu=True)
    with pytest.raises(ToolkitError, match="model folder not found"):
        Predictor(str(tmp_path / "missing"))


def _copy_export(src, dst):
    os.makedirs(dst)
    for name in os.listdir(src):
        with open(os.path.join(src, name), "rb") as handle:
            data = handle.read()
        with open(os.path.join(dst, name), "wb") as handle:
            handle.write(data)


@pytest.mark.parametrize("fmt", ["legacy", "pir"])
def test_model_yaml_input_size_mismatch(exports, tmp_path, fmt):
    broken = str(tmp_path / "broken")
    _copy_export(exports[1][fmt][0], broken)
    path = os.path.join(broken, "model.yaml")
    with open(path) as handle:
        raw = yaml.safe_load(handle)
    raw["input_size"] = [112, 112]
    with open(path, "w") as handle:
        yaml.safe_dump(raw, handle)
    with pytest.raises(ToolkitError, match=r"program input is 56×56 but model.yaml says input_size 112×112"):
        RecognitionPredictor(broken)


def test_missing_and_corrupt_model_files(exports, tmp_path):
    broken = str(tmp_path / "broken")
    _copy_export(exports[1]["legacy"][0], broken)
    os.unlink(os.path.join(broken, "inference.pdiparams"))
    with pytest.raises(ToolkitError, match=r"inference.pdiparams: model file missing"):
        RecognitionPredictor(broken)
    corrupt = str(tmp_path / "corrupt")
    _copy_export(exports[1]["pir"][0], corrupt)
    with open(os.path.join(corrupt, "inference.json"), "w") as handle:
        handle.write("{not json")
    with pytest.raises(ToolkitError, match="inference.json: not a readable pir program"):
        RecognitionPredictor(corrupt)
