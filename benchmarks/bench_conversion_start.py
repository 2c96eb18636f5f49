"""image2bin throughput with conversion workers started by the fork server (what the toolkit does) against a
bare ``fork`` (the peer: what it did before, unsafe once the parent runs threads), measured in the same run.

  python benchmarks/bench_conversion_start.py [--images 2000] [--workers 2] [--rounds 3]

A bare fork copies a parent that may hold a lock of another thread (onnxruntime, OpenMP, tqdm's monitor):
the child then waits on it forever.  The fork server is a single-threaded process that imported the
conversion module once, so workers still start in milliseconds; this prints whether conversion pays for it.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time


def _rate(tree: str, out: str, workers: int) -> float:
    from arcface_paddle.data import convert

    start = time.perf_counter()
    report = convert.image_to_bin(tree, out, workers=workers, progress=False)
    return report.images / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="alternating repeats per start method (best kept)")
    args = parser.parse_args(argv)
    from prettytable import PrettyTable

    from arcface_paddle.data import parallel_chunks
    from arcface_paddle.data.synthetic import write_synthetic_tree
    from arcface_paddle.synthetic.faces import SyntheticFaces

    per_identity = 20
    faces = SyntheticFaces(max(1, args.images // per_identity), per_identity, seed=0)
    toolkit_context = parallel_chunks.pool_context
    contexts = {"fork server (toolkit)": toolkit_context,
                "bare fork (peer)": lambda: multiprocessing.get_context("fork")}
    best = {name: 0.0 for name in contexts}
    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.join(tmp, "tree")
        write_synthetic_tree(faces, tree)
        for round_ in range(args.rounds):
            for name, context in contexts.items():
                parallel_chunks.pool_context = context
                try:
                    best[name] = max(best[name], _rate(tree, tempfile.mkdtemp(dir=tmp), args.workers))
                finally:
                    parallel_chunks.pool_context = toolkit_context
    table = PrettyTable(["start method", "processes", "images", "images/s (best)", "ratio vs bare fork"])
    peer = best["bare fork (peer)"]
    for name, rate in best.items():
        table.add_row([name, args.workers, faces.num_identities * per_identity, f"{rate:.0f}", f"{rate / peer:.2f}"])
    print(table)
    return 0


if __name__ == "__main__":          # guarded: fork-server workers import the main module again
    raise SystemExit(main())
