#!/usr/bin/env python
"""Latency of the shipped SFace recognizer against the same weights in their home runtimes, in one run.

    python benchmarks/bench_recognizer.py --onnx /path/to/face_recognition_sface_2021dec.onnx [--threads 2]

Peers, all on the same aligned 112×112 crops (tests/data/sface_reference.npz), uint8 crop in → 128-d out:
  * ours       — inference_model/mobilenet_sface with Paddle Inference + oneDNN (RecognitionPredictor.embed)
  * OpenCV     — cv2.FaceRecognizerSF.feature on the original ONNX (OpenCV's DNN engine)
  * onnxruntime — the original ONNX on the CPU provider (the graph has a fixed batch of 1)
Reported: median milliseconds per face (batch 1, and batch 8 for ours), ratio to OpenCV, and the cosine of
each peer's embedding to onnxruntime's as a correctness check.  Goal: ours ≤ 0.8× OpenCV.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def median_ms(function, repeats: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def main() -> int:
    import onnxruntime as ort
    from prettytable import PrettyTable

    from arcface_paddle.inference.predictor import RecognitionPredictor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", default=os.environ.get("ARCFACE_SFACE_ONNX"),
                        help="original face_recognition_sface_2021dec.onnx (or env ARCFACE_SFACE_ONNX)")
    parser.add_argument("--model", default=os.path.join(REPO, "inference_model", "mobilenet_sface"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    if not args.onnx or not os.path.isfile(args.onnx):
        parser.error("--onnx: the original SFace .onnx file is needed for the peers")

    crops = np.load(os.path.join(REPO, "tests", "data", "sface_reference.npz"))["crops"]
    one = crops[:1]
    batch8 = np.concatenate([crops, crops[:2]])

    ours = RecognitionPredictor(args.model, cpu_threads=args.threads)
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
    rows = [
        ("OpenCV FaceRecognizerSF", 1, median_ms(lambda: opencv.feature(one_bgr), args.repeats),
         cosine(opencv.feature(one_bgr))),
        ("onnxruntime CPU", 1, median_ms(run_ort, args.repeats), 1.0),
        ("ours: Paddle Inference + oneDNN", 1, median_ms(lambda: ours.embed(one), args.repeats),
         cosine(ours.embed(one))),
        ("ours: Paddle Inference + oneDNN", 8, median_ms(lambda: ours.embed(batch8), args.repeats // 4) / 8,
         cosine(ours.embed(batch8)[0])),
    ]
    opencv_ms = rows[0][2]
    table = PrettyTable(["runtime", "batch", "ms / face", "× OpenCV", "cosine to onnxruntime"])
    for name, batch, ms, cos in rows:
        table.add_row([name, batch, f"{ms:.2f}", f"{ms / opencv_ms:.2f}", f"{cos:.6f}"])
    print(f"SFace 112×112 → 128-d, {args.threads} threads, median of {args.repeats} runs; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; "
          f"cv2 {cv2.__version__}, onnxruntime {ort.__version__}")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
