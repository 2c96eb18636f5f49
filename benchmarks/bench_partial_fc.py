"""PartialFC step time and memory vs a plain full softmax (CPU).

Each configuration runs in a fresh process so its peak RSS is its own.  A step = forward + backward +
SGD-momentum update of the class centres (the embeddings stand in for a backbone's output): by Paddle's
Momentum optimizer, or for ``PartialFC sparse_update`` by ``PartialFC.step_centers`` on the sampled rows.

    python benchmarks/bench_partial_fc.py                      # 10k, 100k, 1M classes, batch 64, 512-d
    python benchmarks/bench_partial_fc.py --classes 10000 100000 --steps 5

The last lines give sparse_update's saving against the dense PartialFC at the same class count (in training:
``-o sparse_update=true``).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

PEER = "full softmax"
SPARSE = "PartialFC sparse_update"


def run_one(classes: int, ratio: float, kind: str, batch: int, dim: int, steps: int, threads: int) -> dict:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import numpy as np
    import paddle

    from arcface_paddle.losses import CombinedMarginLoss, PartialFC, margin_softmax_loss
    from arcface_paddle.losses.partial_fc import init_centers, l2_normalize

    paddle.set_device("cpu")
    paddle.seed(0)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if kind == PEER:
        weight = paddle.create_parameter([classes, dim], "float32",
                                         default_initializer=paddle.nn.initializer.Constant(0.0))
        weight.set_value(init_centers(0, classes, dim))
        margin = CombinedMarginLoss()

        def loss_fn(x, y):
            cosine = paddle.matmul(l2_normalize(x), l2_normalize(weight), transpose_y=True)
            return margin_softmax_loss(cosine, y, margin)
        params = [weight]
    else:
        head = PartialFC(dim, classes, sample_ratio=ratio, sparse_update=kind == SPARSE)
        loss_fn, params = head, head.parameters()
    opt = None if kind == SPARSE else paddle.optimizer.Momentum(0.1, momentum=0.9, weight_decay=5e-4,
                                                                  parameters=params)
    rng = np.random.default_rng(0)
    times, cpu_times = [], []
    for step in range(steps + 1):
        x = paddle.to_tensor(rng.standard_normal((batch, dim)).astype("float32"), stop_gradient=False)
        y = paddle.to_tensor(rng.integers(0, classes, batch))
        start, cpu_start = time.perf_counter(), time.process_time()
        loss = loss_fn(x, y)
        loss.backward()
        if opt is None:
            head.step_centers(0.1, momentum=0.9, weight_decay=5e-4)
        else:
            opt.step()
            opt.clear_grad()
        float(loss)
        if step >= 1:  # one warm-up step
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"step_ms": 1000 * float(np.median(times)), "cpu_ms": 1000 * float(np.median(cpu_times)),
            "peak_rss_mib": peak, "extra_rss_mib": peak - base_rss, "centres_mib": classes * dim * 4 / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--ratio", type=float, default=0.1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full-softmax-max-classes", type=int, default=100_000,
                        help="also time the full-softmax peer up to this many classes")
    parser.add_argument("--sparse-min-classes", type=int, default=100_000,
                        help="also time PartialFC(sparse_update=True) from this many classes up")
    parser.add_argument("--one", nargs=3, metavar=("KIND", "CLASSES", "RATIO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, classes, ratio = args.one[0], int(args.one[1]), float(args.one[2])
        print(json.dumps(run_one(classes, ratio, kind, args.batch, args.dim, args.steps, args.threads)))
        return 0

    from prettytable import PrettyTable
    from tqdm import tqdm

    plan = [(PEER, c, 1.0) for c in args.classes if c <= args.full_softmax_max_classes]
    plan += [("PartialFC", c, args.ratio) for c in args.classes]
    plan += [(SPARSE, c, args.ratio) for c in args.classes if c >= args.sparse_min_classes]
    results = []
    for kind, classes, ratio in tqdm(plan, desc="configs"):
        cmd = [sys.executable, __file__, "--one", kind, str(classes), str(ratio), "--batch", str(args.batch),
               "--dim", str(args.dim), "--steps", str(args.steps), "--threads", str(args.threads)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            return 1
        results.append((kind, classes, ratio, json.loads(done.stdout.strip().splitlines()[-1])))
    peer_row = next((r for r in results if r[0] == PEER), results[0])
    peer = peer_row[3]
    table = PrettyTable(["head", "classes", "sample ratio", "step ms", "× peer time", "CPU ms", "× peer CPU",
                         "centres MiB", "peak RSS MiB", "× peer RSS"])
    for kind, classes, ratio, r in results:
        table.add_row([kind, f"{classes:,}", ratio, f"{r['step_ms']:.1f}", f"{r['step_ms'] / peer['step_ms']:.2f}",
                       f"{r['cpu_ms']:.0f}", f"{r['cpu_ms'] / peer['cpu_ms']:.2f}",
                       f"{r['centres_mib']:.0f}", f"{r['peak_rss_mib']:.0f}",
                       f"{r['peak_rss_mib'] / peer['peak_rss_mib']:.2f}"])
    print(f"batch {args.batch}, {args.dim}-d, {args.threads} threads, median of {args.steps} steps "
          "(fwd + bwd + momentum SGD on the centres; 'CPU ms' = process CPU time, all threads); "
          f"peer = {peer_row[0]} at {peer_row[1]:,} classes")
    print(table)
    dense = {classes: r for kind, classes, _, r in results if kind == "PartialFC"}
    for kind, classes, _, r in results:
        if kind == SPARSE and classes in dense:
            saving = 1 - r["peak_rss_mib"] / dense[classes]["peak_rss_mib"]
            print(f"sparse_update (train.py -o sparse_update=true) at {classes:,} classes: peak RSS "
                  f"{r['peak_rss_mib']:.0f} vs {dense[classes]['peak_rss_mib']:.0f} MiB ({saving:.0%} less), "
                  f"CPU time × {r['cpu_ms'] / dense[classes]['cpu_ms']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
