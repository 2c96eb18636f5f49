"""The CLI boundary (run_cli): user-facing errors are one line with exit 2, programming errors keep their
traceback, --debug shows the traceback of everything; and the sample guard behind training's loaders."""
import errno
import subprocess
import sys

import cv2
import numpy as np
import pytest

from arcface_paddle.cli.arguments import ArgumentParser
from arcface_paddle.core.errors import DEBUG_ENV, ToolkitError, one_line, run_cli
from arcface_paddle.core.sample_guard import GuardedSamples


def _run(main, capsys, monkeypatch, argv=("prog",)):
    monkeypatch.setattr(sys, "argv", list(argv))
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    with pytest.raises(SystemExit) as exit_:
        run_cli(main)
    return exit_.value.code, capsys.readouterr().err


def _raise(error):
    def main():
        raise error
    return main


@pytest.mark.parametrize("error, line", [
    (OSError(errno.ENOSPC, "No space left on device", "out/index.bin"),
     "error: out/index.bin: No space left on device"),
    (OSError(errno.EFBIG, "File too large"), "error: File too large"),
    (UnicodeDecodeError("utf-8", b"caf\xe9", 3, 4, "bad"), "error: text is not UTF-8 (byte 0xe9 at offset 3)"),
    (MemoryError(), "error: out of memory (the input asks for more memory than this machine has)"),
    (ToolkitError("data/a\nb.jpg: not a readable image"), "error: data/a\\nb.jpg: not a readable image"),
])
def test_user_facing_errors_are_one_line_exit_2(error, line, capsys, monkeypatch):
    code, err = _run(_raise(error), capsys, monkeypatch)
    assert code == 2 and err.splitlines() == [line]


def test_opencv_and_value_errors_are_one_line_with_a_debug_hint(capsys, monkeypatch):
    def opencv():
        cv2.resize(np.zeros((0, 0, 3), np.uint8), (4, 4))
    code, err = _run(opencv, capsys, monkeypatch)
    assert code == 2 and len(err.splitlines()) == 1 and "(error; run with --debug for the traceback)" in err
    code, err = _run(_raise(ValueError("bad value\nsecond line")), capsys, monkeypatch)
    assert code == 2 and err.splitlines() == ["error: bad value (ValueError; run with --debug for the traceback)"]


def test_programming_errors_keep_their_traceback(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["prog"])
    with pytest.raises(TypeError):
        run_cli(_raise(TypeError("a bug")))


def test_debug_flag_shows_the_traceback_and_is_not_seen_by_argparse(tmp_path):
    script = ("import sys\nfrom arcface_paddle.core.errors import run_cli, ToolkitError\n"
              "def main():\n    assert '--debug' not in sys.argv\n    raise ToolkitError('x.jpg: broken')\n"
              "run_cli(main)\n")
    done = subprocess.run([sys.executable, "-c", script, "--debug"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" in done.stderr and done.stderr.endswith("error: x.jpg: broken\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr == "error: x.jpg: broken\n"


def test_parser_refuses_nan_inf_and_negative_counts():
    parser = ArgumentParser()
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--tile-size", type=int)
    assert parser.parse_args(["--threshold", "-0.2", "--tile-size", "3"]).threshold == -0.2
    for argv, message in ((["--threshold", "nan"], "--threshold nan: expected a finite number"),
                          (["--threshold=-inf"], "--threshold -inf: expected a finite number"),
                          (["--tile-size", "-3"], "--tile-size -3: must not be negative")):
        with pytest.raises(ToolkitError, match=message):
            parser.parse_args(argv)


def test_one_line_escapes_control_characters_only():
    assert one_line("a\nb\tc\r中文 é") == "a\\nb\tc\\r中文 é"


class _Flaky:
    """Items 0..3; item 2 fails the first ``fails`` times it is read."""

    def __init__(self, fails):
        self.fails = fails

    def __len__(self):
        return 4

    def __getitem__(self, index):
        if index == 2 and self.fails:
            self.fails -= 1
            raise ToolkitError("data/2.bin: truncated shard")
        return np.full(3, index, np.float32), np.int64(index)


def test_guarded_samples_mark_failures_and_raise_the_items_own_error():
    guard = GuardedSamples(_Flaky(fails=10), lambda: (np.zeros(3, np.float32), np.int64(0)))
    good, bad = guard[1], guard[2]
    assert good[-1] == 0 and bad[-1] == 3 and bad[0].shape == good[0].shape
    guard.check(np.array([0, 0]))
    with pytest.raises(ToolkitError, match="data/2.bin: truncated shard"):
        guard.check(np.array([0, 3]))
    once = GuardedSamples(_Flaky(fails=1), lambda: (np.zeros(3, np.float32), np.int64(0)))
    assert once[2][-1] == 3
    with pytest.raises(ToolkitError, match="training sample 2: failed while loading, but read fine when retried"):
        once.check([3])
