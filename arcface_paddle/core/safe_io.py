"""Safe file handling shared by every writer and reader of user data.

* :func:`atomic_write` — write to a temporary file beside the target and rename it into place,
  so an interrupted run (or a full disk) never leaves a half-written file that looks complete.
* :func:`check_writable_folder`, :func:`check_output_file` — fail at once, not after the work, when output
  cannot be written.
* :func:`refuse_overwriting_inputs`, :func:`refuse_overlapping_folders` — an output never replaces an input.
* :func:`read_file_bytes`, :func:`read_text_file` — regular files only (a FIFO named ``x.jpg`` would block
  forever), UTF-8 text or a one-line error.
* :func:`resolve_inside` — a path listed in a dataset stays inside that dataset's folder.
* :func:`exclusive_lock` — serialise read-modify-write of one file between processes.

Reading pickles a user handed us is :mod:`arcface_paddle.core.restricted_pickle`'s job.
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
from typing import IO, Iterable, Iterator

from arcface_paddle.core.errors import ToolkitError

# errno values that mean "this output cannot be written" rather than a bug: disk full, quota, file size
# limit (RLIMIT_FSIZE), read-only file system, I/O error
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM}


def write_error(path: str, error: OSError) -> ToolkitError:
    return ToolkitError(f"{path}: cannot write ({error.strerror or error})")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success rename it onto ``path`` (same folder: atomic).

    A full disk, a quota or a read-only folder is a one-line ToolkitError naming ``path``; the temporary
    file is removed and an existing ``path`` is left as it was.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ToolkitError(f"{path}: is a folder; give a file name for this output")
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    except OSError as error:
        raise write_error(path, error) from None
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
        # mkstemp makes 0600 files; give the result the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_current_umask())
        os.replace(tmp_path, path)
    except OSError as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)
        if error.errno in WRITE_ERRNOS and error.filename in (None, tmp_path, path):
            raise write_error(path, error) from None
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable_folder(folder: str | os.PathLike, create: bool = True) -> None:
    """Prove ``folder`` is (or can be made) a writable folder, before any slow work starts.

    ``create``: make it now; otherwise nothing is left behind — a missing folder is checked through its
    nearest existing parent, so a run that fails later leaves no empty output folder.
    """
    folder = os.fspath(folder)
    probe = folder
    if not create:
        while not os.path.lexists(probe) and os.path.dirname(os.path.abspath(probe)) != os.path.abspath(probe):
            probe = os.path.dirname(os.path.abspath(probe))
    if os.path.exists(probe) and not os.path.isdir(probe):
        raise ToolkitError(f"{folder}: output folder is not writable ({probe} is a file, not a folder)")
    try:
        if create:
            os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as error:
        raise ToolkitError(f"{folder}: output folder is not writable ({error.strerror or error})") from None


def check_output_file(path: str | os.PathLike, what: str = "output file") -> None:
    """An output file name must not be a folder and its folder must be writable: checked before the work."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ToolkitError(f"{path}: {what} is a folder; give a file name")
    check_writable_folder(os.path.dirname(os.path.abspath(path)), create=False)


def atomic_save_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def check_regular_file(path: str | os.PathLike, what: str = "file") -> str:
    """``path`` if it is a regular file (symlinks followed); FIFOs, devices and folders are refused."""
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ToolkitError(f"{path}: {what} not found") from None
    except OSError as error:
        raise ToolkitError(f"{path}: cannot read {what} ({error.strerror or error})") from None
    if stat.S_ISDIR(mode):
        raise ToolkitError(f"{path}: is a folder, expected a {what}")
    if not stat.S_ISREG(mode):
        raise ToolkitError(f"{path}: not a regular file (pipes and devices are never read: they could block forever)")
    return path


def read_file_bytes(path: str | os.PathLike, what: str = "file") -> bytes:
    """The bytes of a regular file the user named; a missing or unreadable one is a one-line ToolkitError."""
    path = check_regular_file(path, what)
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise ToolkitError(f"{path}: cannot read {what} ({error.strerror or error})") from None


def read_text_file(path: str | os.PathLike, what: str = "text file") -> str:
    """A UTF-8 text file (a leading byte-order mark is allowed) as ``str``; anything else is one line."""
    data = read_file_bytes(path, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ToolkitError(f"{os.fspath(path)}: {what} is not UTF-8 text (byte 0x{data[error.start]:02x} at "
                           f"offset {error.start})") from None


def check_relative_path(relative: str, source: str, what: str = "entry") -> str:
    """``relative`` unchanged if it is a plain relative path: no absolute path, drive, ``..``, empty part or NUL."""
    parts = relative.replace("\\", "/").split("/")
    if (not relative or relative.startswith(("/", "\\")) or os.path.isabs(relative)
            or (len(relative) > 1 and relative[1] == ":") or any(p in ("..", "") for p in parts) or "\0" in relative):
        raise ToolkitError(f"{source}: refusing unsafe {what} {relative!r} (an absolute path or '..' would reach "
                           f"outside its folder)")
    return relative


def iter_text_lines(path: str | os.PathLike, what: str = "text file") -> Iterator[tuple[int, str]]:
    """``(line number, line without its line break)`` of a UTF-8 text file, streamed (a label file of millions
    of lines is never held whole); a line that is not UTF-8 is a one-line error naming file and line."""
    path = check_regular_file(path, what)
    try:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, 1):
                try:
                    line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as error:
                    raise ToolkitError(f"{path}:{number}: {what} is not UTF-8 text (byte 0x{raw[error.start]:02x})"
                                       ) from None
                yield number, line.rstrip("\r\n")
    except OSError as error:
        raise ToolkitError(f"{path}: cannot read {what} ({error.strerror or error})") from None


def resolve_inside(root: str, relative: str, source: str, what: str = "entry") -> str:
    """``root/relative``, refusing absolute paths, ``..`` and links that lead outside ``root``."""
    parts = check_relative_path(relative, source, what).replace("\\", "/").split("/")
    target = os.path.realpath(os.path.join(root, *parts))
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, target]) != real_root:
        raise ToolkitError(f"{source}: refusing {what} {relative!r} (resolves outside {root})")
    return target


def _same_or_inside(inner: str, outer: str) -> bool:
    inner, outer = os.path.realpath(inner), os.path.realpath(outer)
    return os.path.commonpath([inner, outer]) == outer


def refuse_overlapping_folders(input_dir: str, output_dir: str, input_flag: str = "input",
                               output_flag: str = "output") -> None:
    """Input and output trees must be disjoint: one inside the other would read (or replace) the other."""
    if _same_or_inside(output_dir, input_dir) or _same_or_inside(input_dir, output_dir):
        relation = ("is" if os.path.realpath(input_dir) == os.path.realpath(output_dir)
                    else "is inside" if _same_or_inside(output_dir, input_dir) else "contains")
        raise ToolkitError(f"{output_dir}: the {output_flag} folder {relation} the {input_flag} folder "
                           f"{input_dir}; choose a folder outside it (nothing was written)")


def refuse_overwriting_inputs(outputs: Iterable[str], inputs: Iterable[str]) -> None:
    """No output file may be one of the input files (same file by path, link or hard link)."""
    existing = {}
    for path in inputs:
        with contextlib.suppress(OSError):
            info = os.stat(path)
            existing[(info.st_dev, info.st_ino)] = path
    for path in outputs:
        with contextlib.suppress(OSError):
            info = os.stat(path)
            source = existing.get((info.st_dev, info.st_ino))
            if source is not None:
                raise ToolkitError(f"{path}: this output would overwrite the input {source}; choose another "
                                   f"output folder (nothing was written)")


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, what: str = "file") -> Iterator[None]:
    """Hold an exclusive lock on ``path + '.lock'`` (waiting, and saying so, while another process has it)."""
    import fcntl  # POSIX only; every platform paddle's CPU wheels run on has it

    lock_path = os.fspath(path) + ".lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666 & ~_current_umask())
    except OSError as error:
        raise ToolkitError(f"{lock_path}: cannot create the lock file ({error.strerror or error})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting: another process is writing {os.fspath(path)} ({what}); continuing when it is done",
                  file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)       # closing releases the lock; the lock file stays (removing it would race)
