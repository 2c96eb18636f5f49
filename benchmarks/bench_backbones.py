"""Training throughput (images/s: forward + backward + momentum SGD) of the recognition backbones.

Each network trains with a PartialFC head on random 112×112 images; the table gives each network's
images/s and its ratio to the first network (the peer) measured in the same run.

    python benchmarks/bench_backbones.py                                   # CPU, batch 8
    python benchmarks/bench_backbones.py --device gpu --amp --batch 128    # GPU with AMP (fp16)
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def measure(network: str, batch: int, steps: int, device: str, amp: bool, classes: int) -> dict:
    import numpy as np
    import paddle

    from arcface_paddle.backbones import get_model
    from arcface_paddle.losses import PartialFC

    paddle.seed(0)
    model = get_model(network)
    head = PartialFC(model.embedding_size, classes, sample_ratio=1.0)
    opt = paddle.optimizer.Momentum(0.1, momentum=0.9, weight_decay=5e-4,
                                    parameters=model.parameters() + head.parameters())
    scaler = paddle.amp.GradScaler(init_loss_scaling=1024) if amp else None
    rng = np.random.default_rng(0)
    images = paddle.to_tensor(rng.standard_normal((batch, 3, 112, 112)).astype("float32"))
    labels = paddle.to_tensor(rng.integers(0, classes, batch))
    times, cpu_times = [], []
    for step in range(steps + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        with paddle.amp.auto_cast(enable=amp):
            embeddings = model(images)
        loss = head(embeddings, labels)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        opt.clear_grad()
        float(loss)  # wait for the device
        if step >= 1:  # one warm-up step
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    params = sum(int(p.size) for p in model.parameters() if not p.stop_gradient)
    step_s = float(np.median(times))
    return {"step_s": step_s, "cpu_s": float(np.median(cpu_times)), "images_per_s": batch / step_s,
            "params_m": params / 1e6}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=["MobileFaceNet_128", "iResNet50"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--amp", action="store_true", help="fp16 autocast + loss scaling (GPU)")
    parser.add_argument("--classes", type=int, default=1000, help="classes of the PartialFC head")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import paddle
    from prettytable import PrettyTable
    from tqdm import tqdm

    paddle.set_device(args.device)
    results = [(n, measure(n, args.batch, args.steps, args.device, args.amp, args.classes))
               for n in tqdm(args.networks, desc="networks")]
    peer = results[0][1]["images_per_s"]
    table = PrettyTable(["network", "params (M)", "step s", "CPU s/step", "images/s", "images/CPU-s",
                         f"× {results[0][0]}"])
    for name, r in results:
        table.add_row([name, f"{r['params_m']:.2f}", f"{r['step_s']:.3f}", f"{r['cpu_s']:.3f}",
                       f"{r['images_per_s']:.1f}", f"{args.batch / r['cpu_s']:.1f}",
                       f"{r['images_per_s'] / peer:.2f}"])
    print(f"device {args.device}{' + AMP' if args.amp else ''}, batch {args.batch}, 112×112, "
          f"{args.threads} CPU threads, median of {args.steps} steps, PartialFC head {args.classes} classes")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
