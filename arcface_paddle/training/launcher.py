"""``train.py --nproc_per_node N``: a multi-process run started for the user, its logs kept with the run.

Runs ``python -m paddle.distributed.launch --nproc_per_node N --log_dir OUTPUT/launch_logs`` on this same
command (without ``--nproc_per_node``) — the launcher prints rank 0's log — and returns its exit status.
Killing cascades down: the launcher gets SIGTERM when this process dies (even by ``kill -9``), the
launcher's own SIGTERM handler stops every rank, each rank also dies with the launcher
(:func:`arcface_paddle.core.processes.die_with_parent`, armed by the trainer), and DataLoader workers with
their rank.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import List

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.processes import die_with_parent

LAUNCH_LOGS = "launch_logs"


def launched_by_paddle() -> bool:
    """True inside a rank started by ``paddle.distributed.launch``."""
    return "PADDLE_TRAINER_ID" in os.environ and "PADDLE_TRAINERS_NUM" in os.environ


def without_option(argv: List[str], option: str) -> List[str]:
    """``argv`` with ``option VALUE`` / ``option=VALUE`` removed."""
    kept, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == option:
            skip = True
        elif not item.startswith(option + "="):
            kept.append(item)
    return kept


def launch_command(nproc: int, log_dir: str, rank_argv: List[str]) -> List[str]:
    """The launcher command running ``python -m arcface_paddle.cli.train RANK_ARGV`` on ``nproc`` ranks."""
    return [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc), "--log_dir", log_dir,
            sys.executable, "-u", "-m", "arcface_paddle.cli.train", *rank_argv]


def _arm_parent_death() -> None:       # runs in the launcher's process, between fork and exec
    die_with_parent(signal.SIGTERM)


def run_launcher(nproc: int, output: str, argv: List[str]) -> int:
    """Run ``argv`` (train.py's arguments) on ``nproc`` processes; the launcher prints rank 0's log."""
    if nproc < 1:
        raise ToolkitError(f"--nproc_per_node must be >= 1, got {nproc}")
    log_dir = os.path.join(output, LAUNCH_LOGS)
    os.makedirs(log_dir, exist_ok=True)
    command = launch_command(nproc, log_dir, without_option(argv, "--nproc_per_node"))
    print(f"launching {nproc} processes; their logs: {log_dir}/workerlog.N", flush=True)
    process = subprocess.Popen(command, preexec_fn=_arm_parent_death)
    try:
        process.wait()
    except KeyboardInterrupt:           # Ctrl-C reached the launcher too: it stops the ranks; wait for it
        process.wait()
    if process.returncode != 0:
        raise ToolkitError(f"{log_dir}: training failed on {nproc} processes (launcher exit status "
                           f"{process.returncode}; each rank's log is workerlog.N there)")
    return 0


def launch_logs_note(output: str) -> str:
    """A line saying where ``paddle.distributed.launch`` put this run's logs when that is outside ``output``
    (it writes to ./log unless told otherwise); empty when not launched or inside."""
    log_dir = os.environ.get("PADDLE_LOG_DIR")
    if not log_dir or not launched_by_paddle():
        return ""
    if os.path.realpath(log_dir).startswith(os.path.realpath(output) + os.sep):
        return ""
    return (f"launch logs are in {log_dir}, outside the run's folder (train.py --nproc_per_node N keeps them in "
            f"{os.path.join(output, LAUNCH_LOGS)})")
