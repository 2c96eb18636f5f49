"""benchmarks/gpu_check.sh on a machine without a GPU: the plan, the arguments, the refusal, the runner.

The checks themselves need paddlepaddle-gpu and a CUDA GPU (docs/gpu.md); here: ``--dry-run`` lists every check,
bad arguments are one-line errors, a CPU build is refused with exit 2, every planned check has its function,
and the parent/child runner turns a child's rows into the one table.
"""
import json
import os
import subprocess
import sys

import paddle
import pytest

SCRIPT = os.path.join("benchmarks", "gpu_check.py")
CHECKS = ["environment", "amp_dtypes", "fp16_resume", "train_throughput", "loss_parity", "predictors", "multi_gpu",
          "launch_1gpu", "data_loader"]


def _run(repo_root, *args, timeout=120, **env):
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=repo_root, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **env))


def test_dry_run_prints_every_check_in_order_within_eight_minutes(repo_root):
    done = _run(repo_root, "--dry-run")
    assert done.returncode == 0, done.stderr
    rows = [line.split("|")[1].strip() for line in done.stdout.splitlines() if line.startswith("| ")]
    assert rows[0] == "check" and [name for name in rows[1:] if name] == CHECKS
    budgets = sum(int(line.split("|")[4]) for line in done.stdout.splitlines()
                  if line.startswith("| ") and line.split("|")[4].strip().isdigit())
    assert budgets <= 450 and "run within --budget 450 s" in done.stdout
    assert "iResNet50 ≥ 3,000 img/s, MobileFaceNet_128 ≥ 8,000 img/s" in done.stdout


def test_only_and_skip_select_checks(repo_root):
    done = _run(repo_root, "--dry-run", "--only", "fp16_resume", "amp_dtypes", "--skip", "amp_dtypes")
    names = [line.split("|")[1].strip() for line in done.stdout.splitlines() if line.startswith("| ")]
    assert done.returncode == 0 and [name for name in names[1:] if name] == ["fp16_resume"]


@pytest.mark.parametrize("args,message", [
    (["--only", "amp", "--dry-run"], "unknown check(s) amp; choose from environment, amp_dtypes"),
    (["--budget", "0", "--dry-run"], "--budget, --steps and the batch sizes must be positive"),
    (["--steps", "x"], "argument --steps: invalid int value"),
])
def test_bad_arguments_are_one_line_errors(repo_root, args, message):
    done = _run(repo_root, *args)
    assert done.returncode == 2 and message in done.stderr.splitlines()[-1]


@pytest.mark.skipif(paddle.is_compiled_with_cuda(), reason="checks the CPU build's refusal")
def test_cpu_build_is_refused_by_the_script_and_the_shell_wrapper(repo_root):
    done = _run(repo_root)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].startswith("error: gpu_check: this paddle is the CPU build")
    shell = subprocess.run(["bash", os.path.join("benchmarks", "gpu_check.sh"), "--only", "amp_dtypes"],
                           cwd=repo_root, capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, PYTHON=sys.executable))
    assert shell.returncode == 2 and "this paddle is the CPU build" in shell.stderr
    plan = subprocess.run(["bash", os.path.join("benchmarks", "gpu_check.sh"), "--dry-run"], cwd=repo_root,
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHON=sys.executable))
    assert plan.returncode == 0 and "amp_dtypes" in plan.stdout


def test_every_planned_check_has_its_function(repo_root):
    code = ("import gpu_check, importlib\n"
            "missing = [c.name for c in gpu_check.CHECKS\n"
            "           if not callable(getattr(importlib.import_module(c.module), c.name, None))]\n"
            "print(missing)")
    done = subprocess.run([sys.executable, "-c", code], cwd=repo_root / "benchmarks", capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_runner_collects_a_child_check_into_the_table(repo_root, tmp_path):
    """The runner itself, through a check that needs no GPU (the hidden --device cpu runs the code on CPU)."""
    out = tmp_path / "rows.json"
    done = _run(repo_root, "--device", "cpu", "--only", "environment", "--workdir", str(tmp_path), "--json", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [r["case"] for r in rows][0] == "paddle" and all(r["status"] == "INFO" for r in rows)
    assert "| environment | paddle" in done.stdout and "0 passed, 0 failed, 0 skipped" in done.stdout
