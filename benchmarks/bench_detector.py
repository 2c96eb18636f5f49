"""Latency of the exported BlazeFace detectors vs the same weights in LiteRT (tflite), in one run.

    python benchmarks/bench_detector.py [--threads 2] [--repeats 200] [--image tests/data/faces/obama.jpg]

For each variant (short_range 128×128, full_range 192×192), on one 640×480 photo:

* network: our exported program through Paddle Inference (oneDNN, fp32) vs ``Interpreter.invoke``
  (XNNPACK) on the same input tensor;
* end to end: image → letterbox → network → decode → weighted NMS → faces in pixels.  Ours is
  ``DetectorPredictor.detect``; LiteRT's pipeline uses the same letterbox and numpy post-processing,
  so the difference is the runtime.

Both runtimes get the same thread count and are called in turn (interleaved), so background load hits
both alike.  Wall and process-CPU time: medians over ``--repeats`` calls after warm-up (on a shared
machine wall time includes waiting for a core, CPU time does not).  Ratios = ours / LiteRT (below 1.0 =
we are faster).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import time

import cv2
import numpy as np
from prettytable import PrettyTable
from tqdm import tqdm

from arcface_paddle.core.predictor import CPU_ENGINES
from blazeface_paddle.inference.predictor import DEFAULT_CPU_ENGINE

REPO = pathlib.Path(__file__).resolve().parent.parent
VARIANTS = ("short_range", "full_range")


def photo_640x480(path: str) -> np.ndarray:
    from arcface_paddle.core.images import read_image

    image = read_image(path)
    height, width = image.shape[:2]
    scale = max(640 / width, 480 / height)
    resized = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    y0 = (resized.shape[0] - 480) // 2
    x0 = (resized.shape[1] - 640) // 2
    return np.ascontiguousarray(resized[y0:y0 + 480, x0:x0 + 640])


def measure_pair_ms(ours, theirs, repeats: int, label: str) -> tuple:
    """Medians (ours wall, ours CPU, theirs wall, theirs CPU) in ms per call, the two called in turn.

    Interleaving makes background load on this shared machine hit both runtimes alike; CPU time is the
    process CPU time of the call (with one thread: the latency on an idle core).
    """
    for _ in range(max(5, repeats // 10)):
        ours()
        theirs()
    times = {"ours": ([], []), "theirs": ([], [])}
    for _ in tqdm(range(repeats), desc=label, leave=False, disable=None):
        for name, function in (("ours", ours), ("theirs", theirs)):
            start, start_cpu = time.perf_counter(), time.process_time()
            function()
            times[name][1].append(time.process_time() - start_cpu)
            times[name][0].append(time.perf_counter() - start)
    return tuple(statistics.median(values) * 1000.0 for name in ("ours", "theirs") for values in times[name])


class LiteRTDetector:
    """The same pipeline as DetectorPredictor.detect with LiteRT running the tflite graph."""

    def __init__(self, variant: str, threads: int):
        from ai_edge_litert.interpreter import Interpreter

        from blazeface_paddle.network.anchors import anchors_for
        from blazeface_paddle.network.variants import get_variant

        self.spec = get_variant(variant)
        self.anchors = anchors_for(variant)
        path = REPO / "tests" / "data" / "blazeface" / f"face_detection_{variant}.tflite"
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        outputs = self.interpreter.get_output_details()
        self.reg_index = next(d["index"] for d in outputs if d["shape"][-1] == 16)
        self.cls_index = next(d["index"] for d in outputs if d["shape"][-1] == 1)

    def invoke(self, nhwc: np.ndarray):
        self.interpreter.set_tensor(self.input_index, nhwc)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.reg_index), self.interpreter.get_tensor(self.cls_index)

    def detect(self, image: np.ndarray) -> list:
        from blazeface_paddle.inference.letterbox import letterbox
        from blazeface_paddle.inference.predictor import select
        from blazeface_paddle.network.decode import decode, scores_from_logits

        canvas, box = letterbox(image, self.spec.input_size)
        regressors, logits = self.invoke((canvas[None].astype(np.float32) - 127.5) / 127.5)
        boxes, keypoints = decode(regressors[0], self.anchors, self.spec.input_size)
        scores = scores_from_logits(logits[0], self.spec.score_clipping)
        boxes, keypoints, scores = select(boxes, keypoints, scores, score_threshold=self.spec.score_threshold,
                                          nms_threshold=self.spec.nms_threshold)
        return list(zip(box.to_pixels(boxes), scores))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--image", default=str(REPO / "tests" / "data" / "faces" / "obama.jpg"))
    parser.add_argument("--engine", choices=CPU_ENGINES, default=DEFAULT_CPU_ENGINE,
                        help=f"what runs our program on the CPU (default: the toolkit's, {DEFAULT_CPU_ENGINE})")
    args = parser.parse_args()

    from blazeface_paddle.inference.letterbox import letterbox
    from blazeface_paddle.inference.predictor import DetectorPredictor

    image = photo_640x480(args.image)
    table = PrettyTable(["variant", "stage", "ours wall ms", "LiteRT wall ms", "wall ratio",
                         "ours CPU ms", "LiteRT CPU ms", "CPU ratio", "faces ours/LiteRT"])
    for variant in VARIANTS:
        ours = DetectorPredictor(REPO / "inference_model" / f"blazeface_{variant}", cpu_threads=args.threads,
                                 cpu_engine=args.engine)
        theirs = LiteRTDetector(variant, args.threads)
        canvas, _ = letterbox(image, ours.input_size)
        nhwc = (canvas[None].astype(np.float32) - 127.5) / 127.5
        faces = f"{len(ours.detect(image))}/{len(theirs.detect(image))}"
        stages = [("network", lambda: ours.run(canvas[None]), lambda: theirs.invoke(nhwc), ""),
                  ("end to end", lambda: ours.detect(image), lambda: theirs.detect(image), faces)]
        for stage, run_ours, run_theirs, note in stages:
            wall_ours, cpu_ours, wall_theirs, cpu_theirs = measure_pair_ms(run_ours, run_theirs, args.repeats,
                                                                           f"{variant} {stage}")
            table.add_row([variant, stage, f"{wall_ours:.2f}", f"{wall_theirs:.2f}", f"{wall_ours / wall_theirs:.2f}×",
                           f"{cpu_ours:.2f}", f"{cpu_theirs:.2f}", f"{cpu_ours / cpu_theirs:.2f}×", note])
    print(f"BlazeFace on a 640×480 photo, ours on {ours.engine}, {args.threads} threads, median of {args.repeats} "
          f"interleaved runs; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores visible")
    print(table)
    return 0


if __name__ == "__main__":
    main()
