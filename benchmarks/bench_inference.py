"""Recognition inference speed: eager paddle vs Paddle Inference predictor vs onnxruntime, one run.

    python benchmarks/bench_inference.py --models MobileFaceNet_128,iResNet50 --threads 2

For each backbone (random weights; speed does not depend on them) the model is exported once
(legacy program + ONNX via paddle2onnx), outputs are checked to agree, then each runtime is timed at
batch 1 (latency per face) and batch 32 (throughput) with the same thread count.  Runtimes are timed
round-robin (so load from other processes on a shared machine hits them alike) and the median kept.
Ratios are against onnxruntime in the same run: the better of its spinning / non-spinning thread
settings, per column.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="MobileFaceNet_128,iResNet50")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32, help="throughput batch size")
    parser.add_argument("--seconds", type=float, default=6.0, help="time budget per (model, runtime, batch)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall: elapsed time; cpu: this process's CPU time (all its threads) — stable on a "
                             "shared machine, and with --threads 1 it equals the latency on an idle core")
    parser.add_argument("--variants", default="onednn",
                        help="predictor settings to time: onednn (default settings), plain (no oneDNN), "
                             "noir (oneDNN, ir_optim off)")
    return parser.parse_args(argv)


def interleaved_medians(runners, x, budget, min_rounds, clock=time.perf_counter):
    """Median seconds per runner, timing them round-robin so a shared machine's load hits all alike."""
    times = {name: [] for name in runners}
    start = time.perf_counter()
    rounds = 0
    while rounds < min_rounds or (time.perf_counter() - start < budget and rounds < 200):
        for name, run in runners.items():
            t0 = clock()
            run(x)
            times[name].append(clock() - t0)
        rounds += 1
    return {name: statistics.median(values) for name, values in times.items()}, rounds


def main(argv=None):
    args = parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)      # eager paddle reads it at import
    import numpy as np
    import onnxruntime
    import paddle
    from prettytable import PrettyTable

    from arcface_paddle.backbones import get_model
    from arcface_paddle.core.predictor import Predictor
    from arcface_paddle.core.program_export import ONNX_NAME
    from arcface_paddle.inference.export import export_model, recognition_config

    paddle.set_device("cpu")
    table = PrettyTable(["model", "runtime", "ms/face (batch 1)", "faces/s (batch %d)" % args.batch,
                         "latency vs ORT", "throughput vs ORT"])
    rng = np.random.default_rng(0)
    variants = {"onednn": dict(), "plain": dict(enable_onednn=False), "noir": dict(ir_optim=False)}
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        paddle.seed(0)
        model = get_model(name)
        model.eval()
        with tempfile.TemporaryDirectory() as folder:
            export_model(model, folder, recognition_config(name), fmt="legacy", onnx=True)
            x1 = rng.standard_normal((1, 3, 112, 112)).astype(np.float32)
            xb = rng.standard_normal((args.batch, 3, 112, 112)).astype(np.float32)
            sessions = {}
            for label, spinning in (("onnxruntime", "1"), ("onnxruntime (no spin)", "0")):
                # ORT's intra-op threads spin-wait by default; on a shared CPU that can hurt, so both are timed
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = args.threads
                options.inter_op_num_threads = 1
                options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
                options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
                sessions[label] = onnxruntime.InferenceSession(os.path.join(folder, ONNX_NAME), options,
                                                               providers=["CPUExecutionProvider"])
            input_name = sessions["onnxruntime"].get_inputs()[0].name

            def eager(x):
                with paddle.no_grad():
                    return model(paddle.to_tensor(x)).numpy()

            runners = {label: (lambda x, s=session: s.run(None, {input_name: x})[0])
                       for label, session in sessions.items()}
            runners["eager"] = eager
            for variant in chosen:
                predictor = Predictor(folder, cpu_threads=args.threads, **variants[variant])
                runners[f"predictor ({variant})"] = predictor.run
            x4 = xb[:4]
            reference = runners["onnxruntime"](x4)
            for runtime, run in runners.items():
                diff = float(np.abs(run(x4) - reference).max() / np.abs(reference).max())
                if diff > 1e-3:
                    raise SystemExit(f"{name} {runtime}: output differs from onnxruntime (max rel {diff:.2e})")
            for run in runners.values():
                run(x1)                                   # warm-up (oneDNN kernels, ORT buffers) at batch 1
            budget = args.seconds * len(runners) / 2
            clock = time.process_time if args.clock == "cpu" else time.perf_counter
            per_face, rounds_1 = interleaved_medians(runners, x1, budget, min_rounds=3, clock=clock)
            # no warm-up at batch B: one large run dwarfs the first-call overheads, and it halves the time
            per_batch, rounds_b = interleaved_medians(runners, xb, budget, min_rounds=1, clock=clock)
            timings = {runtime: (per_face[runtime], args.batch / per_batch[runtime]) for runtime in runners}
            print(f"{name}: {rounds_1} rounds at batch 1, {rounds_b} at batch {args.batch}", file=sys.stderr)
            # the peer is the better of the two onnxruntime settings, for each measure
            ort_latency = min(timings[k][0] for k in sessions)
            ort_throughput = max(timings[k][1] for k in sessions)
            for runtime, (latency, throughput) in timings.items():
                table.add_row([name, runtime, f"{1000 * latency:.2f}", f"{throughput:.1f}",
                               f"{latency / ort_latency:.2f}×", f"{throughput / ort_throughput:.2f}×"])
    print(f"threads={args.threads}, clock={args.clock}, paddle {paddle.__version__}, "
          f"onnxruntime {onnxruntime.__version__}")
    print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
