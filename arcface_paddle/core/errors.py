"""One error type for everything a user can get wrong, and the CLI wrapper that prints it on one line.

Library code raises :class:`ToolkitError` with a message that names the file and the problem
("shard images/00000003.bin: truncated value (expected 4096 bytes, found 100)").  Thin CLI scripts
wrap their ``main`` with :func:`run_cli`, so a user sees ``error: <message>`` and exit status 2
instead of a traceback wall.
"""
from __future__ import annotations

import sys
from typing import Callable


class ToolkitError(Exception):
    """A problem with the user's input (file, data, model, option): reported in one line."""


def reason_for(error: ToolkitError, path: str) -> str:
    """The message of ``error`` without its leading ``"<path>: "``, for lists that already show the path."""
    message = str(error)
    return message[len(path) + 2:] if message.startswith(path + ": ") else message


EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def run_cli(main: Callable[[], int | None]) -> None:
    """Run ``main`` and exit with its status; a ToolkitError becomes a one-line message, exit 2."""
    try:
        status = main()
    except ToolkitError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(int(status or 0))
