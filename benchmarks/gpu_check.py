"""GPU readiness in one table: training throughput, AMP correctness, multi-GPU equality, GPU predictors.

On a CUDA machine with ``paddlepaddle-gpu`` installed (through ``benchmarks/gpu_check.sh``, under 8 minutes)::

    bash benchmarks/gpu_check.sh                        # every check, one table at the end
    bash benchmarks/gpu_check.sh --only amp_dtypes fp16_resume
    python benchmarks/gpu_check.py --dry-run            # the plan (any machine, no GPU needed)

Each check runs in its own child process (a CUDA error or an out-of-memory in one cannot take the others down)
under a time budget; what did not fit is reported as SKIP.  Goals (one H100/H200-class GPU): iResNet50 ≥ 3,000
and MobileFaceNet_128 ≥ 8,000 training images/s with AMP.  ``--markdown`` prints the table for
docs/BENCHMARKS.md; ``--json FILE`` keeps every row.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
GOALS = {"iResNet50": 3000, "MobileFaceNet_128": 8000}      # training images/s, AMP fp16, one GPU
COSINE_GOAL = 0.999                                         # GPU predictors vs CPU oneDNN on the real photos
TOTAL_BUDGET_S = 450                                        # gpu_check.sh stops it at 480 s


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    module: str          # gpu_check_training | gpu_check_inference (imported in the child only)
    plan: str            # what it runs and what it asserts
    budget_s: int
    gpus: int = 1        # GPUs it needs (fewer: a SKIP row with a note)


CHECKS = (      # in order of importance: what the budget cannot fit is skipped from the end
    Check("environment", "gpu_check_inference", "paddle / CUDA / cuDNN / TensorRT versions, GPU name and count, "
          "CPU cores", 10),
    Check("amp_dtypes", "gpu_check_training", "dtypes inside one AMP step of each network (stem conv and last "
          "conv fp16; head FC, BN1d and PartialFC input fp32); the PIR and legacy exports of the AMP-trained "
          "backbone hold no fp16 cast and match eager on the GPU predictor", 30),
    Check("fp16_resume", "gpu_check_training", "an AMP run checkpointed at step 4 and resumed into a new "
          "folder ends like the uninterrupted run; the loss scale is restored", 30),
    Check("train_throughput", "gpu_check_training", "images/s of the trainer's own step (AMP fp16, PartialFC "
          "0.1, synthetic in-memory batches) for MobileFaceNet_128 and iResNet50 at 100k and 1M classes, and "
          "iResNet50 at 1M with sparse_update; peak GPU memory", 90),
    Check("loss_parity", "gpu_check_training", "fp16 vs fp32 training of both networks over 50 steps of "
          "synthetic faces: mean loss of the last 10 steps within 5 %, both falling", 45),
    Check("predictors", "gpu_check_inference", "latency (batch 1) and outputs of the shipped models on GPU "
          "fp32 / fp16 / TensorRT fp16 vs CPU oneDNN: cosine ≥ 0.999 on the real test photos", 90),
    Check("multi_gpu", "gpu_check_training", "2 GPUs × batch B (NCCL, sync_bn) vs 1 GPU × batch 2B at "
          "sample ratio 1.0 (same losses, weights, BN statistics) and 0.5 (BN statistics and first loss)", 60, 2),
    Check("launch_1gpu", "gpu_check_training", "python -m paddle.distributed.launch --gpus 0 train.py (fp16, "
          "20 steps, checkpoints) finishes", 30),
    Check("data_loader", "gpu_check_inference", "shard loader alone: images/s vs DataLoader workers on this "
          "machine's cores (benchmarks/bench_shards.py) against the 8,000 img/s a GPU consumes", 35),
)
BY_NAME = {check.name: check for check in CHECKS}
COLUMNS = ("check", "case", "result", "goal", "status")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="checks: " + ", ".join(BY_NAME),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit (no GPU needed)")
    parser.add_argument("--only", nargs="+", metavar="CHECK", help="run only these checks")
    parser.add_argument("--skip", nargs="+", metavar="CHECK", default=[], help="leave these checks out")
    parser.add_argument("--budget", type=int, default=TOTAL_BUDGET_S,
                        help="seconds for all checks (default %(default)s)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per throughput case (default 30)")
    parser.add_argument("--batch-mobilefacenet", type=int, default=512, help="per-GPU batch (default 512)")
    parser.add_argument("--batch-iresnet", type=int, default=256, help="per-GPU batch (default 256)")
    parser.add_argument("--workdir", help="keep child logs and runs here (default: a temporary folder)")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument("--json", metavar="FILE", help="also write every row to this JSON file")
    parser.add_argument("--device", default="gpu", choices=("gpu", "cpu"), help=argparse.SUPPRESS)  # cpu: smoke
    parser.add_argument("--child", help=argparse.SUPPRESS)       # run one check in this process
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [name for name in (args.only or []) + args.skip + ([args.child] if args.child else [])
               if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown check(s) {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    if args.budget < 1 or args.steps < 1 or args.batch_mobilefacenet < 1 or args.batch_iresnet < 1:
        parser.error("--budget, --steps and the batch sizes must be positive")
    return args


def selected(args) -> list:
    names = args.only or list(BY_NAME)
    return [BY_NAME[name] for name in BY_NAME if name in names and name not in args.skip]


def print_plan(checks, args) -> None:
    from prettytable import PrettyTable

    table = PrettyTable(["check", "what it runs and asserts", "GPUs", "budget s"], align="l")
    table.max_width["what it runs and asserts"] = 90
    for check in checks:
        table.add_row([check.name, check.plan, check.gpus, check.budget_s])
    print(table)
    print(f"{len(checks)} checks, {sum(c.budget_s for c in checks)} s of budgets, run within --budget {args.budget} s; "
          f"batches: MobileFaceNet_128 {args.batch_mobilefacenet}, iResNet50 {args.batch_iresnet}; goals "
          f"{', '.join(f'{k} ≥ {v:,} img/s' for k, v in GOALS.items())}, predictor cosine ≥ {COSINE_GOAL}")


def gpu_problem() -> str | None:
    """Why this machine cannot run the checks (None when it can)."""
    try:
        import paddle
    except ImportError:
        return "paddle is not installed (pip install paddlepaddle-gpu==3.3.1 for your CUDA)"
    if not paddle.is_compiled_with_cuda():
        return "this paddle is the CPU build; install paddlepaddle-gpu==3.3.1 for your CUDA"
    if paddle.device.cuda.device_count() < 1:
        return "paddle sees no CUDA GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES)"
    return None


def row(check: str, case: str, result: str, goal: str = "", status: str = "INFO") -> dict:
    return {"check": check, "case": case, "result": result, "goal": goal, "status": status}


def run_child(check: Check, args, workdir: str, timeout: float) -> list:
    """Run one check in a fresh process; a crash or a timeout becomes a FAIL row."""
    result = os.path.join(workdir, f"{check.name}.json")
    log = os.path.join(workdir, f"{check.name}.log")
    command = [sys.executable, os.path.abspath(__file__), "--child", check.name, "--result", result,
               "--workdir", workdir, "--device", args.device, "--steps", str(args.steps), "--batch-mobilefacenet",
               str(args.batch_mobilefacenet), "--batch-iresnet", str(args.batch_iresnet)]
    with open(log, "w") as handle:
        try:
            done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, timeout=timeout, cwd=REPO)
        except subprocess.TimeoutExpired:
            return [row(check.name, "-", f"timed out after {timeout:.0f} s (log: {log})", status="FAIL")]
    if done.returncode != 0 or not os.path.isfile(result):
        with open(log, errors="replace") as handle:
            lines = [line.strip() for line in handle if line.strip()]
        last = lines[-1][:200] if lines else "no output"
        return [row(check.name, "-", f"exit {done.returncode}: {last} (log: {log})", status="FAIL")]
    with open(result) as handle:
        return json.load(handle)


def child_main(args) -> int:
    import importlib

    check = BY_NAME[args.child]
    module = importlib.import_module(check.module)           # benchmarks/ is sys.path[0] for this script
    workdir = tempfile.mkdtemp(prefix=check.name + "-", dir=args.workdir)    # a rerun never meets old runs
    rows = getattr(module, check.name)(args, workdir)
    with open(args.result, "w") as handle:
        json.dump(rows, handle)
    return 0


def print_table(rows, args, elapsed: float) -> None:
    from prettytable import PrettyTable

    table = PrettyTable(list(COLUMNS), align="l")
    table.max_width["result"] = 70
    for item in rows:
        table.add_row([item[column] for column in COLUMNS])
    if args.markdown:
        from prettytable import TableStyle

        table.set_style(TableStyle.MARKDOWN)
    print(table)
    counts = {status: sum(item["status"] == status for item in rows) for status in ("PASS", "FAIL", "SKIP")}
    print(f"{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped in {elapsed:.0f} s")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    checks = selected(args)
    if args.dry_run:
        print_plan(checks, args)
        return 0
    problem = gpu_problem() if args.device == "gpu" else None
    if problem:
        print(f"error: gpu_check: {problem} (python benchmarks/gpu_check.py --dry-run shows the plan)",
              file=sys.stderr)
        return 2
    import paddle

    gpus = paddle.device.cuda.device_count() if args.device == "gpu" else 2    # cpu: a smoke run of the code
    workdir = args.workdir or tempfile.mkdtemp(prefix="gpu_check-")
    os.makedirs(workdir, exist_ok=True)
    start, rows = time.time(), []
    for check in checks:
        left = args.budget - (time.time() - start)
        if check.gpus > gpus:
            rows.append(row(check.name, "-", f"needs {check.gpus} GPUs, this machine has {gpus}", status="SKIP"))
        elif left < min(15, check.budget_s):
            rows.append(row(check.name, "-", f"time budget spent ({args.budget} s)", status="SKIP"))
        else:
            print(f"[{time.time() - start:5.0f} s] {check.name} ...", flush=True)
            rows.extend(run_child(check, args, workdir, timeout=min(left, 2 * check.budget_s)))
    print_table(rows, args, time.time() - start)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)
    print(f"logs: {workdir}")
    return 1 if any(item["status"] == "FAIL" for item in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
