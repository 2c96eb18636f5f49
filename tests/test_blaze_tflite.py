"""Imported BlazeFace weights reproduce MediaPipe's tflite models run by LiteRT, and bad files are refused."""
import dataclasses
import pathlib

import numpy as np
import paddle
import pytest
from ai_edge_litert.interpreter import Interpreter

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import read_image
from blazeface_paddle.conversion.tflite_import import convert_tflite
from blazeface_paddle.inference.letterbox import letterbox
from blazeface_paddle.network.variants import SHORT_RANGE

TFLITE_DIR = pathlib.Path(__file__).resolve().parent / "data" / "blazeface"
VARIANT_NAMES = ("short_range", "full_range")


def tflite_path(variant: str) -> str:
    return str(TFLITE_DIR / f"face_detection_{variant}.tflite")


@pytest.fixture(scope="module")
def converted():
    paddle.set_device("cpu")
    return {variant: convert_tflite(tflite_path(variant), variant) for variant in VARIANT_NAMES}


def run_litert(variant: str, nhwc: np.ndarray) -> tuple:
    interpreter = Interpreter(model_path=tflite_path(variant))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], nhwc)
    interpreter.invoke()
    outputs = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
    regressors = next(o for o in outputs if o.shape[-1] == 16)
    logits = next(o for o in outputs if o.shape[-1] == 1)
    return regressors, logits


def inputs_for(variant: str, faces_dir) -> np.ndarray:
    """obama.jpg first, then every other real photo (portraits and non-faces) letterboxed, then a random
    tensor: NHWC float32 in [-1, 1]."""
    size = 128 if variant == "short_range" else 192
    photos = [faces_dir / "obama.jpg"] + sorted(path for folder in (faces_dir, faces_dir.parent / "nonfaces")
                                                for path in folder.iterdir() if path.name != "obama.jpg")
    canvases = [letterbox(read_image(path), size)[0].astype(np.float32) / 127.5 - 1.0 for path in photos]
    noise = np.random.default_rng(0).uniform(-1, 1, (size, size, 3)).astype(np.float32)
    return np.stack(canvases + [noise])


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_raw_outputs_equal_litert(converted, variant, faces_dir):
    layer, info = converted[variant]
    assert info["sha256"] and info["converted_convolutions"] == (37 if variant == "short_range" else 89)
    batch = inputs_for(variant, faces_dir)
    with paddle.no_grad():
        ours_reg, ours_logits = (t.numpy() for t in layer(paddle.to_tensor(batch.transpose(0, 3, 1, 2))))
    for index in range(len(batch)):
        ref_reg, ref_logits = run_litert(variant, batch[index:index + 1])
        np.testing.assert_allclose(ours_reg[index:index + 1], ref_reg, atol=2e-3, rtol=1e-4)
        np.testing.assert_allclose(ours_logits[index:index + 1], ref_logits, atol=2e-3, rtol=1e-4)
    # the photo really contains a face the reference is confident about (the comparison is not all-background)
    ref_reg, ref_logits = run_litert(variant, batch[:1])
    assert ref_logits.max() > 1.0 and ours_logits[0].argmax() == ref_logits[0].argmax()


def test_wrong_variant_or_layout_is_refused(tmp_path):
    with pytest.raises(ToolkitError, match="does not match BlazeFace full_range"):
        convert_tflite(tflite_path("short_range"), "full_range")
    # same input size, one block different: the structural check must notice
    stages = list(SHORT_RANGE.stages)
    stages[1] = stages[1][:-1]
    altered = dataclasses.replace(SHORT_RANGE, stages=tuple(stages))
    with pytest.raises(ToolkitError, match="face_detection_short_range.tflite"):
        convert_tflite(tflite_path("short_range"), altered)


def test_corrupt_or_missing_file_is_refused(tmp_path):
    truncated = tmp_path / "cut.tflite"
    truncated.write_bytes(pathlib.Path(tflite_path("short_range")).read_bytes()[:5000])
    with pytest.raises(ToolkitError, match="cut.tflite"):
        convert_tflite(str(truncated), "short_range")
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a model at all")
    with pytest.raises(ToolkitError, match="not a valid .tflite"):
        convert_tflite(str(garbage), "short_range")
    with pytest.raises(ToolkitError, match="cannot read"):
        convert_tflite(str(tmp_path / "missing.tflite"), "short_range")
