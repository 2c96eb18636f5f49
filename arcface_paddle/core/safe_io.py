"""Safe file handling shared by every writer and reader of user data.

* :func:`atomic_write` — write to a temporary file beside the target and rename it into place,
  so an interrupted run never leaves a half-written file that looks complete.
* :func:`check_writable_folder` — fail at once, not after the work, when output cannot be written.

Reading pickles a user handed us is :mod:`arcface_paddle.core.restricted_pickle`'s job.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator

from arcface_paddle.core.errors import ToolkitError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success rename it onto ``path`` (same folder: atomic)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
        # mkstemp makes 0600 files; give the result the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_current_umask())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable_folder(folder: str | os.PathLike) -> None:
    """Create ``folder`` if needed and prove it is writable, before any slow work starts."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ToolkitError(f"{os.fspath(folder)}: output folder is not writable ({error.strerror or error})") from None


def atomic_save_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def read_file_bytes(path: str | os.PathLike, what: str = "file") -> bytes:
    """The bytes of a regular file the user named; a missing or unreadable one is a one-line ToolkitError."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ToolkitError(f"{path}: {what} not found")
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise ToolkitError(f"{path}: cannot read {what} ({error.strerror or error})") from None
