"""Training log: one console line every ``log_every`` steps and VisualDL scalars (rank 0 only).

Console line::

    epoch 1/25 step 1200/90000 loss 12.3456 lr 0.100000 images/s 950.2 eta 2:41:07

(``90000``: the step the run stops at — ``max_steps`` when set, and the ETA counts to it.)

VisualDL tags: ``train/loss``, ``train/lr``, ``train/images_per_second``, extra training terms
(``train/center_loss`` ...), and per validation target ``val/<name>/accuracy``, ``val/<name>/xnorm``,
``val/<name>/tar@far=1e-03`` ...  (scalars only: VisualDL's pr/roc curves break with numpy 2).
Serve with ``visualdl --logdir LOGDIR --host 127.0.0.1 --language en``.
"""
from __future__ import annotations

import datetime
import logging
import sys
import time
from typing import Mapping, Optional

from arcface_paddle.evaluation.verification import far_label

LOGGER_NAME = "arcface_paddle.train"


class _CurrentStdout(logging.StreamHandler):
    """Writes to ``sys.stdout`` as it is at each line, so a redirection made after the logger was first created
    (``contextlib.redirect_stdout``, a test's capture) still receives the lines."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def console_logger(rank: int = 0) -> logging.Logger:
    """A logger printing plain lines to stdout on rank 0 (warnings only elsewhere)."""
    logger = logging.getLogger(f"{LOGGER_NAME}.rank{rank}")
    if not logger.handlers:
        handler = _CurrentStdout(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    return logger


class TrainLogger:
    """Collects per-step values, prints averaged console lines and writes VisualDL scalars."""

    def __init__(self, *, total_steps: int, num_epochs: int, log_every: int = 10, logdir: Optional[str] = None,
                 rank: int = 0, start_step: int = 0, records_file: str = ""):
        self.total_steps, self.num_epochs = int(total_steps), int(num_epochs)
        self.log_every = max(int(log_every), 1)
        self.rank = rank
        self.console = console_logger(rank)
        self.writer = None
        if logdir and rank == 0:
            from visualdl import LogWriter  # slow to import: only when logging is on

            self.writer = LogWriter(logdir=logdir, file_name=records_file)    # appends to records_file if given
        self._window_start = time.perf_counter()
        self._window_images = 0
        self._window_steps = 0
        self._sums: dict = {}
        self.last_line = ""
        self.start_step = start_step

    def info(self, message: str) -> None:
        self.console.info(message)

    def warning(self, message: str) -> None:
        self.console.warning(message)

    def step(self, *, step: int, epoch: int, lr: float, images: int, values: Mapping[str, float]) -> None:
        """Record optimizer step ``step`` (1-based count of steps done); ``values`` e.g. {"loss": 3.2}."""
        self._window_images += images
        self._window_steps += 1
        for key, value in values.items():
            self._sums[key] = self._sums.get(key, 0.0) + float(value)
        if step % self.log_every and step != self.total_steps:
            return
        elapsed = max(time.perf_counter() - self._window_start, 1e-9)
        speed = self._window_images / elapsed
        means = {key: total / self._window_steps for key, total in self._sums.items()}
        seconds_per_step = elapsed / self._window_steps
        eta = datetime.timedelta(seconds=int(seconds_per_step * max(self.total_steps - step, 0)))
        terms = " ".join(f"{key} {value:.4f}" for key, value in means.items())
        self.last_line = (f"epoch {epoch + 1}/{self.num_epochs} step {step}/{self.total_steps} {terms} "
                          f"lr {lr:.6f} images/s {speed:.1f} eta {eta}")
        self.console.info(self.last_line)
        for key, value in means.items():
            self.scalar(f"train/{key}", value, step)
        self.scalar("train/lr", lr, step)
        self.scalar("train/images_per_second", speed, step)
        self._window_start, self._window_images, self._window_steps, self._sums = time.perf_counter(), 0, 0, {}

    def validation(self, name: str, result, step: int) -> None:
        """Log a verification result (evaluation.verification.VerificationResult) for target ``name``."""
        tars = " ".join(f"{far_label(far)} {result.tar_at_far[far]:.4f}" if far in result.tar_at_far
                        else f"{far_label(far)} -" for far in result.fars)
        self.console.info(f"[{name}] step {step} accuracy {result.accuracy:.4f} ± {result.accuracy_std:.4f} "
                          f"xnorm {result.xnorm:.3f} threshold {result.best_threshold:.3f}"
                          + (f" TAR@FAR {tars}" if tars else ""))
        self.scalar(f"val/{name}/accuracy", result.accuracy, step)
        self.scalar(f"val/{name}/xnorm", result.xnorm, step)
        for far in result.fars:      # an FAR the impostor count cannot measure has no point to draw
            if far in result.tar_at_far:
                self.scalar(f"val/{name}/tar@far={far_label(far)}", result.tar_at_far[far], step)

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag=tag, value=float(value), step=int(step))

    def reset_timer(self) -> None:
        """Start a new throughput window (after validation or checkpointing, which are not training)."""
        self._window_start = time.perf_counter()
        self._window_images = 0
        self._window_steps = 0
        self._sums = {}

    def flush(self) -> None:
        """Write pending VisualDL records to disk now (they are otherwise flushed every two minutes)."""
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
