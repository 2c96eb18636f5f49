"""Safe file handling shared by every writer and reader of user data.

* :func:`atomic_write` — write to a temporary file beside the target and rename it into place,
  so an interrupted run never leaves a half-written file that looks complete.
* :func:`restricted_loads` — unpickle bytes a user handed us while allowing only plain data
  types; a crafted pickle that tries to import anything (``os.system``...) is refused.
"""
from __future__ import annotations

import contextlib
import io
import os
import pickle
import tempfile
from typing import IO, Iterator

from .errors import ToolkitError


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


def atomic_save_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


# Builtins that carry data only.  numpy arrays (uint8 images inside verification .bin files) are
# rebuilt through these two numpy entry points, which construct arrays and nothing else.
_SAFE_BUILTINS = {"bytes", "bytearray", "list", "tuple", "dict", "set", "frozenset", "str", "int", "float",
                  "bool", "complex"}
_SAFE_NUMPY = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


# Python 3 pickles of protocol <= 2 store bytes as _codecs.encode(str, "latin1"): a pure conversion.
_SAFE_FUNCTIONS = {("_codecs", "encode")}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, allow_numpy: bool):
        super().__init__(file, encoding="bytes")
        self._allow_numpy = allow_numpy

    def find_class(self, module: str, name: str):
        if module == "builtins" and name in _SAFE_BUILTINS:
            return super().find_class(module, name)
        if (module, name) in _SAFE_FUNCTIONS:
            return super().find_class(module, name)
        if self._allow_numpy and (module, name) in _SAFE_NUMPY:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def restricted_loads(data: bytes, *, source: str, allow_numpy: bool = False):
    """Unpickle ``data`` allowing only plain data (and numpy arrays when ``allow_numpy``).

    ``source`` names the file in the error message.  Any disallowed global or a malformed
    pickle raises :class:`ToolkitError`.
    """
    try:
        return _RestrictedUnpickler(io.BytesIO(data), allow_numpy).load()
    except pickle.UnpicklingError as error:
        raise ToolkitError(f"{source}: unsafe or corrupt pickle ({error})") from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError, UnicodeDecodeError) as error:
        raise ToolkitError(f"{source}: corrupt pickle ({type(error).__name__}: {error})") from None
