#!/usr/bin/env python
"""Latency of the shipped SFace recognizer against the same weights in their home runtimes, in one run.

    python benchmarks/bench_recognizer.py --onnx /path/to/face_recognition_sface_2021dec.onnx [--threads 1]

Peers, all on the same aligned 112×112 crops (tests/data/sface_reference.npz), uint8 crop in → 128-d out:
  * ours       — inference_model/mobilenet_sface with Paddle Inference + oneDNN (RecognitionPredictor.embed),
                 and the same weights exported with the head BNs folded into the FC (import_pretrained --fuse-head)
  * OpenCV     — cv2.FaceRecognizerSF.feature on the original ONNX (OpenCV's DNN engine)
  * onnxruntime — the original ONNX on the CPU provider (the graph has a fixed batch of 1)
Peers run in turn (interleaved) so background load hits all alike.  Reported: median process CPU time and
wall time per face (batch 1, and batch 8 for ours), ratios to OpenCV, and the cosine of each peer's embedding
to onnxruntime's as a correctness check.  Goal: ours ≤ 0.8× OpenCV.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np
from tqdm import tqdm

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def interleaved_medians(functions: dict, repeats: int, warmup: int = 5) -> dict:
    """{name: (median wall ms, median process CPU ms)} per call, calling the peers in turn so background
    load (this machine is shared) hits every peer alike.  With one thread, CPU time is what the call would
    take on an idle core; wall time also counts waiting for a core."""
    for _ in range(warmup):
        for function in functions.values():
            function()
    wall = {name: [] for name in functions}
    cpu = {name: [] for name in functions}
    for _ in tqdm(range(repeats), desc="interleaved runs", leave=False):
        for name, function in functions.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            function()
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)
    return {name: (1000.0 * statistics.median(wall[name]), 1000.0 * statistics.median(cpu[name]))
            for name in functions}


def main() -> int:
    import onnxruntime as ort
    import paddle
    from prettytable import PrettyTable

    from arcface_paddle.importers import load_layer_from_inference_model
    from arcface_paddle.inference.export import export_model
    from arcface_paddle.inference.recognizer import RecognitionPredictor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", default=os.environ.get("ARCFACE_SFACE_ONNX"),
                        help="original face_recognition_sface_2021dec.onnx (or env ARCFACE_SFACE_ONNX)")
    parser.add_argument("--model", default=os.path.join(REPO, "inference_model", "mobilenet_sface"))
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per runtime (1: CPU time = latency on an idle core)")
    parser.add_argument("--repeats", type=int, default=60)
    args = parser.parse_args()
    if not args.onnx or not os.path.isfile(args.onnx):
        parser.error("--onnx: the original SFace .onnx file is needed for the peers")

    crops = np.load(os.path.join(REPO, "tests", "data", "sface_reference.npz"))["crops"]
    one = crops[:1]
    batch8 = np.concatenate([crops, crops[:2]])

    ours = RecognitionPredictor(args.model, cpu_threads=args.threads)
    fused_dir = tempfile.mkdtemp(prefix="sface_fused_")
    layer, config = load_layer_from_inference_model(args.model)
    export_model(layer.fused_for_inference(), fused_dir, dataclasses.replace(config, model_id=None))
    ours_fused = RecognitionPredictor(fused_dir, cpu_threads=args.threads)
    cv2.setNumThreads(args.threads)
    opencv = cv2.FaceRecognizerSF.create(args.onnx, "")
    one_bgr = np.ascontiguousarray(one[0][:, :, ::-1])
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def run_ort():
        return session.run(None, {input_name: one.transpose(0, 3, 1, 2).astype(np.float32)})[0]

    reference = run_ort()[0]
    cosine = lambda a: float(np.dot(a.ravel(), reference) / np.linalg.norm(a) / np.linalg.norm(reference))  # noqa: E731
    peers = {  # name → (batch, function)
        "OpenCV FaceRecognizerSF": (1, lambda: opencv.feature(one_bgr)),
        "onnxruntime CPU": (1, run_ort),
        "ours: Paddle Inference + oneDNN": (1, lambda: ours.embed(one)),
        "ours: Paddle Inference + oneDNN, batch 8": (8, lambda: ours.embed(batch8)),
        "ours, fused head (--fuse-head)": (1, lambda: ours_fused.embed(one)),
        "ours, fused head (--fuse-head), batch 8": (8, lambda: ours_fused.embed(batch8)),
    }
    checks = {"OpenCV FaceRecognizerSF": cosine(opencv.feature(one_bgr)), "onnxruntime CPU": 1.0,
              "ours: Paddle Inference + oneDNN": cosine(ours.embed(one)),
              "ours: Paddle Inference + oneDNN, batch 8": cosine(ours.embed(batch8)[0]),
              "ours, fused head (--fuse-head)": cosine(ours_fused.embed(one)),
              "ours, fused head (--fuse-head), batch 8": cosine(ours_fused.embed(batch8)[0])}
    medians = interleaved_medians({name: function for name, (_, function) in peers.items()}, args.repeats)
    opencv_wall, opencv_cpu = medians["OpenCV FaceRecognizerSF"]
    table = PrettyTable(["runtime", "batch", "CPU ms / face", "× OpenCV (CPU)", "wall ms / face",
                         "× OpenCV (wall)", "cosine to onnxruntime"])
    for name, (batch, _) in peers.items():
        wall_ms, cpu_ms = (value / batch for value in medians[name])
        table.add_row([name, batch, f"{cpu_ms:.2f}", f"{cpu_ms / opencv_cpu:.2f}", f"{wall_ms:.2f}",
                       f"{wall_ms / opencv_wall:.2f}", f"{checks[name]:.6f}"])
    print(f"SFace 112×112 → 128-d, {args.threads} thread(s) per runtime, median of {args.repeats} interleaved "
          f"runs; {platform.machine()}, {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"paddle {paddle.__version__}, cv2 {cv2.__version__}, onnxruntime {ort.__version__}")
    print(table)
    shutil.rmtree(fused_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
