"""GPU, fp16 and TensorRT inference reach both models from the CLIs and the Python API (docs/gpu.md).

On this CPU build each request must end in one line naming ``paddlepaddle-gpu`` — which also proves the option
arrived at the predictor it was meant for (the message names the precision or engine asked for).  On a GPU
machine benchmarks/gpu_check.sh runs them for real.
"""
import argparse
import os
import subprocess
import sys

import paddle
import pytest

from arcface_paddle.cli.device_options import add_device_arguments, device_options
from arcface_paddle.core.errors import ToolkitError

pytestmark = pytest.mark.skipif(paddle.is_compiled_with_cuda(), reason="checks the CPU build's refusal")


def _options(*argv):
    parser = argparse.ArgumentParser()
    add_device_arguments(parser)
    return device_options(parser.parse_args(list(argv)))


def test_device_flags_imply_the_gpu():
    assert _options() == {"use_gpu": False, "use_tensorrt": False, "precision": "fp32", "gpu_id": 0,
                          "det_engine": "openvino"}
    assert _options("--use_tensorrt")["use_gpu"] and _options("--precision", "fp16")["use_gpu"]
    assert _options("--use_gpu", "--gpu_id", "3", "--det_engine", "onednn") == {
        "use_gpu": True, "use_tensorrt": False, "precision": "fp32", "gpu_id": 3, "det_engine": "onednn"}
    with pytest.raises(SystemExit):
        _options("--precision", "bf16")


def test_detector_and_recognizer_each_receive_the_options():
    from arcface_paddle.pipeline.analyzer import DEFAULT_DET_MODEL, FaceAnalyzer
    from blazeface_paddle.inference.predictor import DetectorPredictor

    with pytest.raises(ToolkitError, match="^fp16 inference needs paddlepaddle-gpu"):
        DetectorPredictor(DEFAULT_DET_MODEL, use_gpu=True, precision="fp16")
    for engine in ("openvino", "onednn"):     # asked without use_gpu: refused too, not run in fp32 on the CPU
        with pytest.raises(ToolkitError, match="^fp16 inference needs paddlepaddle-gpu"):
            DetectorPredictor(DEFAULT_DET_MODEL, precision="fp16", cpu_engine=engine)
        with pytest.raises(ToolkitError, match="^TensorRT inference needs paddlepaddle-gpu"):
            DetectorPredictor(DEFAULT_DET_MODEL, use_tensorrt=True, cpu_engine=engine)
    with pytest.raises(ToolkitError, match="^TensorRT inference needs paddlepaddle-gpu"):
        FaceAnalyzer(det=True, rec=False, use_gpu=True, use_tensorrt=True)        # the detector refuses
    with pytest.raises(ToolkitError, match="^fp16 inference needs paddlepaddle-gpu"):
        FaceAnalyzer(det=False, rec=True, use_gpu=True, precision="fp16")         # the recognizer refuses


@pytest.mark.parametrize("command,flag", [
    (["detect", "tests/data/faces/biden.jpg"], "--precision=fp16"),
    (["compare", "tests/data/faces/biden.jpg", "tests/data/faces/obama.jpg"], "--use_tensorrt"),
    (["recognize", "--input", "tests/data/faces/biden.jpg"], "--use_gpu"),
])
def test_cli_device_flags_are_one_line_errors_on_the_cpu_build(repo_root, tmp_path, command, flag):
    if command[0] == "recognize":
        command = command + ["--output", str(tmp_path)]
    done = subprocess.run([sys.executable, "-m", "arcface_paddle", *command, flag], cwd=repo_root,
                          capture_output=True, text=True, timeout=120)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr[-2000:]
    assert lines[-1].startswith("error: ") and "needs paddlepaddle-gpu; this paddle is the CPU build" in lines[-1]
    assert "Traceback" not in done.stderr


def test_cpu_engine_reaches_the_detector_and_falls_back_where_openvino_cannot_convert():
    from arcface_paddle.core.predictor import Predictor
    from arcface_paddle.pipeline.analyzer import DEFAULT_REC_MODEL, FaceAnalyzer

    assert FaceAnalyzer(rec=False).detector.predictor.engine == "openvino"           # the default
    assert FaceAnalyzer(rec=False, det_engine="onednn").detector.predictor.engine == "onednn"
    # OpenVINO cannot convert the shipped SFace program: oneDNN runs it, and says so
    assert Predictor(str(DEFAULT_REC_MODEL), cpu_engine="openvino").engine == "onednn"
    with pytest.raises(ToolkitError, match="cpu_engine must be one of"):
        Predictor(str(DEFAULT_REC_MODEL), cpu_engine="tvm")
    result = subprocess.run([sys.executable, "-m", "arcface_paddle", "detect", "tests/data/faces/obama.jpg",
                             "--det_engine", "tvm"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "invalid choice: 'tvm'" in result.stderr


def test_openvino_writes_nothing_where_the_user_runs_it(repo_root, tmp_path):
    """Paddle's OpenVINO engine caches compiled graphs in ./__cache__ unless told otherwise: the predictor gives
    it a private folder that is gone when the process ends."""
    photo = str(repo_root / "tests" / "data" / "faces" / "obama.jpg")
    script = ("import os, sys; from arcface_paddle.core.predictor import openvino_cache_dir; "
              "from arcface_paddle.cli.detect import main; code = main([sys.argv[1]]); "
              "print('CACHE', openvino_cache_dir(), len(os.listdir(openvino_cache_dir()))); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", script, photo], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    folder, blobs = result.stdout.split("CACHE ")[1].split()
    assert int(blobs) >= 1                           # OpenVINO did cache, in its own folder...
    assert os.listdir(tmp_path) == []                # ...not in the user's
    assert not os.path.exists(folder)                # and that folder went with the process
