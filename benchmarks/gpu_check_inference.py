"""The environment, predictor and data-loader checks of gpu_check.py (each in its own child process)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import numpy as np
from gpu_check import COSINE_GOAL, HERE, REPO, row

PHOTOS = os.path.join(REPO, "tests", "data", "faces")
MODES = (("GPU fp32", {"use_gpu": True}), ("GPU fp16", {"use_gpu": True, "precision": "fp16"}),
         ("GPU TensorRT fp16", {"use_gpu": True, "use_tensorrt": True, "precision": "fp16"}))
LATENCY_RUNS = 100
LOADER_TARGET = 8000


def environment(args, workdir: str) -> list:
    import paddle

    def ask(what):
        try:
            return str(what())
        except Exception as error:      # a build without TensorRT, an older driver: say so, do not stop
            return f"unknown ({type(error).__name__})"

    gpus = paddle.device.cuda.device_count() if paddle.is_compiled_with_cuda() else 0
    names = ", ".join(ask(lambda i=i: paddle.device.cuda.get_device_name(i)) for i in range(gpus)) or "none"
    memory = ask(lambda: f"{paddle.device.cuda.get_device_properties(0).total_memory / 2 ** 30:.0f} GiB") \
        if gpus else "-"
    return [row("environment", "paddle", f"{paddle.__version__} ({ask(lambda: paddle.version.commit[:10])}), numpy "
                f"{np.__version__}, python {sys.version.split()[0]}"),
            row("environment", "CUDA / cuDNN / NCCL / TensorRT",
                f"{ask(paddle.version.cuda)} / {ask(paddle.version.cudnn)} / {ask(paddle.version.nccl)} / "
                f"{ask(paddle.version.tensorrt)} (runtime {ask(paddle.inference.get_trt_runtime_version)})"),
            row("environment", f"{gpus} GPU(s)", f"{names}; {memory}; {os.cpu_count()} CPU cores")]


def _photos() -> list:
    from arcface_paddle.core.images import list_images, read_image

    return [read_image(path) for path in list_images(PHOTOS)]


def _inputs(model_dir: str, photos: list) -> list:
    """The model's own input batches made from the real photos: aligned faces for the recognizer (one batch),
    one letterboxed photo per batch for a detector."""
    from arcface_paddle.core.model_yaml import load_model_config

    config = load_model_config(model_dir)
    if config.task == "recognition":
        from arcface_paddle.inference.recognizer import RecognitionPredictor
        from arcface_paddle.pipeline.analyzer import FaceAnalyzer

        analyzer = FaceAnalyzer(rec_model=model_dir)       # CPU: only its crops are used
        crops = [analyzer.crop(photo, face) for photo in photos for face in analyzer.detect(photo)]
        recognizer = RecognitionPredictor(model_dir)
        return [recognizer.preprocess(np.stack(crops))]
    from blazeface_paddle.inference.letterbox import letterbox
    from blazeface_paddle.inference.predictor import DetectorPredictor

    detector = DetectorPredictor(model_dir)
    return [detector._to_input(letterbox(photo, detector.input_size)[0][None]) for photo in photos]


def _latency_ms(predictor, batch: np.ndarray) -> float:
    for _ in range(10):
        predictor.run_outputs(batch)
    times = []
    for _ in range(LATENCY_RUNS):
        start = time.perf_counter()
        predictor.run_outputs(batch)         # copies the outputs back to the host: the wait for the device
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def _min_cosine(outputs: list, reference: list) -> float:
    """Smallest cosine between GPU and CPU outputs: per face for embeddings, per output tensor for detectors."""
    worst = 1.0
    for got_all, want_all in zip(outputs, reference):
        for got, want in zip(got_all, want_all):
            rows = got.reshape(len(got), -1).astype(np.float64), want.reshape(len(want), -1).astype(np.float64)
            cosine = (rows[0] * rows[1]).sum(1) / (np.linalg.norm(rows[0], axis=1) * np.linalg.norm(rows[1], axis=1)
                                                   + 1e-12)
            worst = min(worst, float(cosine.min()))
    return worst


def predictors(args, workdir: str) -> list:
    from arcface_paddle.core.predictor import Predictor
    from arcface_paddle.core.shipped_models import DEFAULT_DETECTOR, DEFAULT_RECOGNIZER, SHORT_RANGE_DETECTOR

    photos, rows = _photos(), []
    threads = max(1, min(8, os.cpu_count() or 1))
    modes = MODES if getattr(args, "device", "gpu") == "gpu" else (("CPU again (smoke run)", {}),)
    for model_dir in (DEFAULT_RECOGNIZER, SHORT_RANGE_DETECTOR, DEFAULT_DETECTOR):
        name = os.path.basename(model_dir)
        inputs = _inputs(model_dir, photos)
        cpu = Predictor(model_dir, cpu_threads=threads)
        reference = [cpu.run_outputs(batch) for batch in inputs]
        cpu_ms = _latency_ms(cpu, inputs[0][:1])
        for mode, options in modes:
            try:
                predictor = Predictor(model_dir, cpu_threads=threads, **options)
                outputs = [predictor.run_outputs(batch) for batch in inputs]
                cosine, ms = _min_cosine(outputs, reference), _latency_ms(predictor, inputs[0][:1])
            except Exception as error:      # one mode failing (e.g. no TensorRT in this build) is one FAIL row
                rows.append(row("predictors", f"{name} {mode}", f"{type(error).__name__}: "
                                f"{str(error).strip().splitlines()[-1][:150] if str(error).strip() else ''}",
                                f"cosine ≥ {COSINE_GOAL}", "FAIL"))
                continue
            count = sum(len(batch) for batch in inputs)
            rows.append(row("predictors", f"{name} {mode}", f"batch 1: {ms:.2f} ms (CPU oneDNN {threads} threads "
                            f"{cpu_ms:.2f} ms); min cosine vs CPU {cosine:.5f} over {count} real inputs",
                            f"cosine ≥ {COSINE_GOAL}", "PASS" if cosine >= COSINE_GOAL else "FAIL"))
    return rows


def data_loader(args, workdir: str) -> list:
    cores = os.cpu_count() or 1
    workers = sorted({0, max(1, cores // 2), cores})
    command = [sys.executable, os.path.join(HERE, "bench_shards.py"), "--images", "3000", "--rounds", "1",
               "--target", str(LOADER_TARGET), "--workers", *map(str, workers)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=workdir)
    summary = re.search(r"shard loader: (\d+) img/s per process.*?≥ (\d+) loader processes.*?Best measured here: "
                        r"(\d+) img/s", done.stdout, flags=re.S)
    if done.returncode != 0 or summary is None:
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        return [row("data_loader", "bench_shards.py", f"exit {done.returncode}: {lines[-1][:150] if lines else ''}",
                    status="FAIL")]
    per_process, needed, best = (int(v) for v in summary.groups())
    return [row("data_loader", f"shard DataLoader, workers {'/'.join(map(str, workers))} ({cores} cores)",
                f"best {best:,} img/s; {per_process:,} img/s per process → {needed} workers for {LOADER_TARGET:,} "
                f"img/s" + ("" if best >= LOADER_TARGET else "; caps the GPU: see docs/gpu.md (data loading)"),
                f"≥ {LOADER_TARGET:,} img/s", "PASS" if best >= LOADER_TARGET else "FAIL")]
