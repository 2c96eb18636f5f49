"""Where BlazeFace training time goes on this machine: the data pipeline vs the training step, and
eager vs exported evaluation.

Images/s of (1) the per-sample pipeline (JPEG read → crop/flip/colour → letterbox → anchor targets),
(2) one training step (forward + loss with hard-negative mining + backward + Adam), (3) AP evaluation
with the eager checkpoint path (``LayerDetector``) and (4) with the exported model through
``DetectorPredictor`` (oneDNN). Ratios are against the training step measured in the same run.

    python benchmarks/bench_det_training.py                 # CPU, short-range, batch 32
    python benchmarks/bench_det_training.py --batch 8 --threads 2
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scenes", type=int, default=128)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import numpy as np
    import paddle
    from prettytable import PrettyTable

    from blazeface_paddle.inference.predictor import DetectorPredictor
    from blazeface_paddle.training.anchor_matching import AnchorMatcher
    from blazeface_paddle.training.annotations import DetectionDataset, read_annotated_image
    from blazeface_paddle.training.augment import DetectionAugment
    from blazeface_paddle.training.config import load_detector_config
    from blazeface_paddle.training.evaluation import LayerDetector
    from blazeface_paddle.training.synthetic_scenes import SyntheticScenes
    from blazeface_paddle.training.trainer import DetectorTrainer, TrainingSample

    paddle.set_device("cpu")
    work = tempfile.mkdtemp(prefix="bench_det_")
    label = SyntheticScenes(seed=0, image_size=(480, 640), face_height=(24, 160)).write(work, args.scenes)
    rows = {}

    dataset = DetectionDataset(label, transform=TrainingSample(DetectionAugment(128), AnchorMatcher("short_range")))
    start = time.perf_counter()
    for index in range(len(dataset)):
        dataset[index]
    rows["sample pipeline (640×480 JPEG → targets)"] = len(dataset) / (time.perf_counter() - start)

    config = load_detector_config(None, [f"data.train={label}", f"output={os.path.join(work, 'run')}",
                                         f"batch_size={args.batch}", "checkpoint_every_steps=100000"])
    trainer = DetectorTrainer(config, progress=False)
    trainer.config["max_steps"] = 1
    trainer.train()                                                     # warm-up step
    trainer.config["max_steps"] = 1 + args.steps
    start = time.perf_counter()
    trainer.train()
    rows[f"training step (batch {args.batch}, incl. data)"] = args.batch * args.steps / (time.perf_counter() - start)

    images = [read_annotated_image(dataset.images_root, item.image_path) for item in dataset.annotations[:64]]
    eager = LayerDetector(trainer.model, score_threshold=0.05)
    eager.detect_batch(images[:4])
    start = time.perf_counter()
    for chunk in range(0, len(images), 16):
        eager.detect_batch(images[chunk:chunk + 16])
    rows["evaluation, eager checkpoint (batch 16)"] = len(images) / (time.perf_counter() - start)

    predictor = DetectorPredictor("inference_model/blazeface_short_range", cpu_threads=args.threads,
                                  score_threshold=0.05)
    predictor.detect(images[0])
    start = time.perf_counter()
    for image in images:
        predictor.detect(image)
    rows["evaluation, exported model (predictor, oneDNN)"] = len(images) / (time.perf_counter() - start)

    peer = rows[f"training step (batch {args.batch}, incl. data)"]
    table = PrettyTable(["stage", "images/s", "× training step"])
    for name, rate in rows.items():
        table.add_row([name, f"{rate:.1f}", f"{rate / peer:.2f}"])
    print(f"BlazeFace short-range, CPU, {args.threads} threads, {np.__name__} {np.__version__}")
    print(table)


if __name__ == "__main__":
    main()
