"""Machinery of the hostile-input matrix (tests/test_hostile_*.py): rows, the runner, the checks.

A :class:`Row` is one bad input given to one surface (a command, or an API call run through ``run_cli``):
its command line with ``{name}`` placeholders filled from the *world* (a dict of paths to hostile files the
test module built once), the exit status, a regular expression the one-line message must match, and the
world entries that must be byte-for-byte unchanged (files or whole trees) or absent afterwards.

Rows run in-process (``run_cli(lambda: main(argv))``) under an alarm (and a watchdog for hangs in C++), so
a hang fails instead of stalling the suite; ``subprocess=True`` rows run ``python -m arcface_paddle <command>``
(for what needs a process of its own: data-loader workers, a file-size limit standing in for a full disk).
"""
from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import hashlib
import importlib
import io
import os
import re
import resource
import shlex
import signal
import stat
import subprocess
import sys
import warnings

import pytest

from arcface_paddle.core.errors import run_cli

ROW_TIMEOUT = 120            # seconds: a row that takes longer has hung


@dataclasses.dataclass(frozen=True)
class Row:
    id: str
    argv: str                  # shlex-split, then each token .format(**world)
    code: int                  # expected exit status
    message: str               # regex: in the single "error: " line (code != 0) or the output (code 0)
    unchanged: str = ""        # world names (space-separated) whose file or tree must not change
    absent: str = ""           # world names that must not exist afterwards
    subprocess: bool = False   # run as `python -m arcface_paddle <command>`
    file_size_limit: int = 0   # subprocess: RLIMIT_FSIZE in bytes (writes past it fail with EFBIG: a full disk)

    def param(self):
        return pytest.param(self, id=self.id)


def table(*rows: Row) -> list:
    ids = [row.id for row in rows]
    assert len(ids) == len(set(ids)), "row ids must be unique"
    return [row.param() for row in rows]


def digest(path: str):
    """A comparable fingerprint of a file or a whole tree (never opens FIFOs or devices)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return ("link", os.readlink(path))
    if stat.S_ISREG(info.st_mode):
        with open(path, "rb") as handle:
            return ("file", hashlib.sha256(handle.read()).hexdigest())
    if stat.S_ISDIR(info.st_mode):
        return ("dir", tuple((name, digest(os.path.join(path, name))) for name in sorted(os.listdir(path))))
    return ("special", stat.S_IFMT(info.st_mode))


def _show_warning(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


class _Hung(Exception):
    pass


def _alarm(signum, frame):
    raise _Hung(f"no answer within {ROW_TIMEOUT} s")


def run_in_process(command, argv: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``arcface-paddle <command> ARGV`` run in this process; ``command``
    may also be an API call ``main(argv)`` (then the status is what ``run_cli`` makes of its errors)."""
    main = command if callable(command) else \
        importlib.import_module(f"arcface_paddle.cli.{command.replace('-', '_')}").main
    out, err = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(ROW_TIMEOUT)
    # a hang inside C++ (a DataLoader's queue) never returns to Python for the alarm: then, a little later,
    # a watchdog thread prints every stack and ends the test run — a failure, never a hung suite
    faulthandler.dump_traceback_later(ROW_TIMEOUT + 30, exit=True)
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("always")       # pytest's filters and recorder would hide what a user sees
            warnings.showwarning = _show_warning
            try:
                run_cli(lambda: main(argv))
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return code, out.getvalue(), err.getvalue()


def run_subprocess(command: str, argv: list[str], file_size_limit: int = 0, cwd=None) -> tuple[int, str, str]:
    limit = None
    if file_size_limit:
        def limit():
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
    env = dict(os.environ, OMP_NUM_THREADS="2")
    env.pop("ARCFACE_PADDLE_DEBUG", None)
    done = subprocess.run([sys.executable, "-m", "arcface_paddle", command, *argv], capture_output=True, text=True,
                          timeout=ROW_TIMEOUT, env=env, preexec_fn=limit, cwd=cwd)
    return done.returncode, done.stdout, done.stderr


def check_row(command: str, row: Row, world: dict) -> None:
    """Run ``row`` against ``command`` and assert everything it promises."""
    argv = [token.format(**world) for token in shlex.split(row.argv)]
    watched = [world[name] for name in row.unchanged.split()]
    before = [digest(path) for path in watched]
    if row.subprocess:
        code, out, err = run_subprocess(command, argv, row.file_size_limit)
    else:
        code, out, err = run_in_process(command, argv)
    shown = f"exit {code}\n--- stdout\n{out[-3000:]}\n--- stderr\n{err[-3000:]}"
    assert "Traceback" not in out + err, shown
    assert code == row.code, shown
    if row.code != 0:
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, shown
        assert re.search(row.message, errors[0]), f"{row.message!r} not in {errors[0]!r}"
    else:
        assert re.search(row.message, out + err), f"{row.message!r} not found\n{shown}"
    for path, old in zip(watched, before):
        assert digest(path) == old, f"{path} changed"
    for name in row.absent.split():
        assert not os.path.lexists(world[name]), f"{world[name]} exists"


@contextlib.contextmanager
def read_only_folder(path: str):
    """``path`` made unwritable for the duration: chmod for a normal user; for root (whom permissions do not
    stop) a read-only bind mount; a skip where neither is possible."""
    os.makedirs(path, exist_ok=True)
    mounted = False
    os.chmod(path, 0o555)
    if _writable(path):
        bound = subprocess.run(["mount", "--bind", path, path], capture_output=True)
        ro = bound.returncode == 0 and subprocess.run(["mount", "-o", "remount,bind,ro", path],
                                                      capture_output=True).returncode == 0
        mounted = bound.returncode == 0
        if not ro:
            _unmount(path, mounted)
            os.chmod(path, 0o755)
            pytest.skip("cannot make a read-only folder here (root without mount rights)")
    try:
        yield path
    finally:
        _unmount(path, mounted)
        os.chmod(path, 0o755)


def _writable(path: str) -> bool:
    probe = os.path.join(path, ".probe")
    try:
        with open(probe, "w"):
            pass
    except OSError:
        return False
    os.unlink(probe)
    return True


def _unmount(path: str, mounted: bool) -> None:
    if mounted:
        subprocess.run(["umount", path], capture_output=True)


def compile_messages(rows) -> None:
    """Every row's message is a valid regex (a typo there would make a row pass for the wrong reason)."""
    for param in rows:
        re.compile(param.values[0].message)
