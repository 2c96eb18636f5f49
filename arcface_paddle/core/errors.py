"""One error type for everything a user can get wrong, and the CLI wrapper that prints it on one line.

Library code raises :class:`ToolkitError` with a message that names the file and the problem
("shard images/00000003.bin: truncated value (expected 4096 bytes, found 100)").  Thin CLI scripts
wrap their ``main`` with :func:`run_cli`, so a user sees ``error: <file>: <reason>`` and exit status 2
instead of a traceback wall.

:func:`run_cli` is also the last line of defence: an ``OSError`` (disk full, permission denied...),
``UnicodeDecodeError``, ``ValueError``, ``MemoryError`` or OpenCV ``cv2.error`` that a reader did not turn
into a ToolkitError still becomes one line with exit 2.  Anything else (a genuine programming error) keeps
its traceback.  ``--debug`` on any command line (or ``ARCFACE_PADDLE_DEBUG=1``) shows the traceback of
every error.
"""
from __future__ import annotations

import os
import sys
import traceback
from typing import Callable


class ToolkitError(Exception):
    """A problem with the user's input (file, data, model, option): reported in one line."""


def reason_for(error: ToolkitError, path: str) -> str:
    """The message of ``error`` without its leading ``"<path>: "``, for lists that already show the path."""
    message = str(error)
    return message[len(path) + 2:] if message.startswith(path + ": ") else message


EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
DEBUG_FLAG = "--debug"
DEBUG_ENV = "ARCFACE_PADDLE_DEBUG"


def describe_os_error(error: OSError) -> str:
    """``<file>: <reason>`` for an OSError (``<reason>`` alone when it names no file)."""
    reason = error.strerror or str(error) or type(error).__name__
    names = [os.fspath(name) for name in (error.filename, error.filename2) if name is not None]
    return f"{' → '.join(map(str, names))}: {reason}" if names else reason


def _is_opencv_error(error: BaseException) -> bool:
    # cv2 is not imported here (core.errors stays import-light): its error class is recognised by name
    return type(error).__module__ == "cv2" and type(error).__name__ == "error"


def describe_unexpected(error: BaseException) -> str | None:
    """The one-line message for an error a reader should have caught, or None for a programming error."""
    if isinstance(error, OSError):
        return describe_os_error(error)
    if isinstance(error, UnicodeDecodeError):
        return f"text is not UTF-8 (byte 0x{error.object[error.start]:02x} at offset {error.start})"
    if isinstance(error, MemoryError):
        return "out of memory (the input asks for more memory than this machine has)"
    if isinstance(error, ValueError) or _is_opencv_error(error):
        first = (str(error).strip().splitlines() or [type(error).__name__])[-1 if _is_opencv_error(error) else 0]
        return f"{first} ({type(error).__name__}; run with {DEBUG_FLAG} for the traceback)"
    return None


def debug_requested() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _take_debug_flag() -> None:
    """``--debug`` anywhere on the command line: remove it (argparse never sees it) and remember it."""
    if DEBUG_FLAG in sys.argv[1:]:
        sys.argv[1:] = [arg for arg in sys.argv[1:] if arg != DEBUG_FLAG]
        os.environ[DEBUG_ENV] = "1"


def one_line(message: str) -> str:
    """``message`` on one line: line breaks and other control characters (a folder may be named "a\\nb")
    are shown escaped, as repr would."""
    return "".join(char if char.isprintable() or char == "\t" else repr(char)[1:-1] for char in message)


def _end_progress_bars() -> None:
    """Close live tqdm bars (ending their line), so an error never lands in the middle of a progress line."""
    tqdm_module = sys.modules.get("tqdm")          # only if a bar can exist: tqdm is not imported here
    for bar in list(getattr(getattr(tqdm_module, "tqdm", None), "_instances", ())):
        bar.close()


def _report(message: str) -> None:
    _end_progress_bars()
    print(f"error: {one_line(message)}", file=sys.stderr)


def run_cli(main: Callable[[], int | None]) -> None:
    """Run ``main`` and exit with its status; a user's error becomes a one-line message, exit 2."""
    _take_debug_flag()
    try:
        status = main()
    except ToolkitError as error:
        if debug_requested():
            traceback.print_exc()
        _report(str(error))
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:  # noqa: BLE001  (sorted below: user-facing errors vs programming errors)
        message = describe_unexpected(error)
        if message is None or debug_requested():
            raise
        _report(message)
        sys.exit(EXIT_USER_ERROR)
    sys.exit(int(status or 0))
