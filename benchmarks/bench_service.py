"""Benchmark the service against its peers measured in the same run.

1. Throughput: N concurrent HTTP clients recognising photos for a bounded time against the service
   (``arcface-paddle serve``, micro-batched recogniser, one inference thread per core) vs the same photos
   through ``FaceAnalyzer`` one at a time in one process (decode + analyze + match, all cores for Paddle).
   Reports images/s, p50/p99 latency and the ratio. Goals on 2 cores: ratio ≥ 1.5×, service p99 < 3× p50.
2. Gallery search at scale: top-5 of one query over N faces (default 1M), SQLite + in-memory numpy matrix
   (our default store) vs milvus-lite (FLAT, exact), plus how long each takes to fill and to open.

    python benchmarks/bench_service.py                          # both parts, 1M faces
    python benchmarks/bench_service.py --seconds 10 --faces 100000   # a quick check
"""
from __future__ import annotations

import argparse
import asyncio
import glob
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
from prettytable import PrettyTable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring time per side (after warm-up)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--cpu_threads", type=int, default=2, help="Paddle threads of the one-at-a-time peer")
    parser.add_argument("--faces", type=int, default=1_000_000, help="gallery size for the search benchmark")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--skip_service", action="store_true")
    parser.add_argument("--skip_search", action="store_true")
    parser.add_argument("--workdir", help="where the galleries are written (default: a temporary folder)")
    return parser.parse_args()


def photos() -> list[tuple[str, bytes]]:
    paths = sorted(glob.glob(os.path.join(REPO, "tests", "data", "faces", "*.*")))
    paths += sorted(glob.glob(os.path.join(REPO, "demo", "query", "*.jpg")))
    out = []
    for path in paths:
        with open(path, "rb") as handle:
            out.append((os.path.basename(path), handle.read()))
    return out


def summary(latencies: list[float], seconds: float) -> dict:
    values = np.asarray(latencies) * 1000.0
    return {"images/s": len(values) / seconds, "p50": float(np.percentile(values, 50)),
            "p99": float(np.percentile(values, 99)), "n": len(values)}


# ---- 1. throughput ----------------------------------------------------------------------------------------
def one_at_a_time(images, seconds: float, cpu_threads: int) -> dict:
    from arcface_paddle.core.images import decode_image
    from arcface_paddle.pipeline.analyzer import FaceAnalyzer

    analyzer = FaceAnalyzer(index=os.path.join(REPO, "demo", "index.bin"), cpu_threads=cpu_threads)
    for name, data in images:                                        # warm-up: every shape once
        analyzer.analyze(decode_image(data, name))
    latencies, start, i = [], time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        name, data = images[i % len(images)]
        began = time.perf_counter()
        analyzer.analyze(decode_image(data, name))
        latencies.append(time.perf_counter() - began)
        i += 1
    return summary(latencies, time.perf_counter() - start)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_service(folder: str, port: int) -> subprocess.Popen:
    import httpx

    command = [sys.executable, "-m", "arcface_paddle", "serve", "--gallery", os.path.join(folder, "gallery.db"),
               "--import_index", os.path.join(REPO, "demo", "index.bin"), "--port", str(port), "--log_level",
               "warning"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"service did not start: {server.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("service did not become ready in 120 s")


async def clients(url: str, images, count: int, seconds: float) -> dict:
    import httpx

    latencies, failures = [], 0
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        async def client_loop(offset: int, until: float, record: bool):
            nonlocal failures
            i = offset
            while time.perf_counter() < until:
                name, data = images[i % len(images)]
                began = time.perf_counter()
                response = await client.post(url, files={"image": (name, data)})
                if response.status_code != 200:
                    failures += 1
                elif record:
                    latencies.append(time.perf_counter() - began)
                i += 1

        await asyncio.gather(*(client_loop(k, time.perf_counter() + 3.0, False) for k in range(count)))  # warm-up
        start = time.perf_counter()
        await asyncio.gather(*(client_loop(k, start + seconds, True) for k in range(count)))
        elapsed = time.perf_counter() - start
    result = summary(latencies, elapsed)
    result["failures"] = failures
    return result


def bench_service(args) -> None:
    images = photos()
    peer = one_at_a_time(images, args.seconds, args.cpu_threads)
    folder = tempfile.mkdtemp(prefix="bench-service-")
    port = free_port()
    server = start_service(folder, port)
    try:
        ours = asyncio.run(clients(f"http://127.0.0.1:{port}/api/v1/recognize", images, args.clients, args.seconds))
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)
    table = PrettyTable(["side", "images/s", "p50 ms", "p99 ms", "p99/p50", "requests"])
    table.add_row([f"service, {args.clients} HTTP clients", f"{ours['images/s']:.1f}", f"{ours['p50']:.0f}",
                   f"{ours['p99']:.0f}", f"{ours['p99'] / ours['p50']:.2f}",
                   f"{ours['n']} ({ours['failures']} failed)"])
    table.add_row([f"FaceAnalyzer one at a time ({args.cpu_threads} threads)", f"{peer['images/s']:.1f}",
                   f"{peer['p50']:.0f}", f"{peer['p99']:.0f}", f"{peer['p99'] / peer['p50']:.2f}", peer["n"]])
    print(f"photos: {len(images)} ({', '.join(name for name, _ in images)})")
    print(table)
    print(f"throughput ratio service / one-at-a-time: {ours['images/s'] / peer['images/s']:.2f}× (goal ≥ 1.5×); "
          f"service p99/p50 {ours['p99'] / ours['p50']:.2f} (goal < 3)")


# ---- 2. search at scale -----------------------------------------------------------------------------------
def fill(store, features: np.ndarray, subjects: int) -> float:
    from arcface_paddle.stores import NewFace

    start = time.perf_counter()
    batch = 20_000
    for offset in range(0, len(features), batch):
        rows = features[offset:offset + batch]
        store.add([NewFace(f"person{(offset + i) % subjects:07d}", row, f"f{offset + i:08d}", "bench")
                   for i, row in enumerate(rows)])
    return time.perf_counter() - start


def median_search_ms(store, queries: np.ndarray) -> tuple[float, list]:
    store.search(queries[:1], 5)
    times, names = [], []
    for query in queries:
        began = time.perf_counter()
        result = store.search(query[None], 5)
        times.append(time.perf_counter() - began)
        names.append(result[0][1])
    return 1000.0 * float(np.median(times)), names


def bench_search(args) -> None:
    from arcface_paddle.stores import GalleryInfo, open_store

    rng = np.random.default_rng(0)
    features = rng.standard_normal((args.faces, args.dim), dtype=np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    info = GalleryInfo("bench", "aligned", args.dim)
    subjects = max(1, args.faces // 10)
    folder = args.workdir or tempfile.mkdtemp(prefix="bench-search-")
    table = PrettyTable(["store", "faces", "fill s", "open s", "top-5 search ms (median)"])
    results = {}
    try:
        for label, uri in (("SQLite + numpy", os.path.join(folder, "gallery.db")),
                           ("milvus-lite (FLAT)", "milvus-lite:" + os.path.join(folder, "gallery.milvus.db"))):
            store = open_store(uri, info)
            fill_s = fill(store, features, subjects)
            store.close()
            began = time.perf_counter()
            store = open_store(uri, info, create=False)
            open_s = time.perf_counter() - began
            search_ms, names = median_search_ms(store, queries)
            store.close()
            results[label] = (search_ms, names)
            table.add_row([label, f"{args.faces:,}", f"{fill_s:.1f}", f"{open_s:.2f}", f"{search_ms:.1f}"])
            print(f"{label}: done", flush=True)
    finally:
        if not args.workdir:
            shutil.rmtree(folder, ignore_errors=True)
    print(table)
    (sqlite_ms, sqlite_names), (milvus_ms, milvus_names) = results.values()
    agree = np.mean([a == b for a, b in zip(sqlite_names, milvus_names)])
    print(f"search ratio SQLite+numpy / milvus-lite: {sqlite_ms / milvus_ms:.2f}×; identical top-5 names for "
          f"{agree:.0%} of {len(queries)} queries")


def main():
    args = parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)       # one line per request otherwise
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"cpu count: {os.cpu_count()}; load average (1, 5, 15 min): {load}")
    if not args.skip_service:
        bench_service(args)
    if not args.skip_search:
        bench_search(args)


if __name__ == "__main__":
    main()
