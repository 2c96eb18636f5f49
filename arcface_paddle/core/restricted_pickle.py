"""Unpickle bytes a user handed us while allowing only plain data (and numpy arrays when asked).

Kept by hand because no library does it: a crafted pickle that tries to import anything (``os.system``...)
is refused, and so is one that asks for memory it does not hold (``bytes(10**13)``, codecs that grow data,
numpy arrays of a declared shape).  Verification ``.bin`` files, shards and reference indexes are read with it.
"""
from __future__ import annotations

import io
import pickle

import numpy as np

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.safe_io import read_file_bytes

# Builtins that carry data only; ``bytes``/``bytearray``/``_codecs.encode`` are reached through the guarded
# versions in _SAFE_FUNCTIONS.  numpy arrays (uint8 images inside verification .bin files) are rebuilt the way
# numpy pickles them: an empty array from ``_reconstruct``, then filled from the bytes that follow.
_SAFE_BUILTINS = {"list", "tuple", "dict", "set", "frozenset", "str", "int", "float", "bool", "complex"}
_SAFE_NUMPY = {("numpy", "dtype"), ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}  # protocol 5
_NUMPY_RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}
# ``numpy.ndarray`` itself is handed out as this token: called, the class would allocate any shape it is given.
_NDARRAY_TOKEN = object()
_LATIN1 = {"latin1", "latin-1", "iso-8859-1"}


def _refuse(call: str) -> pickle.UnpicklingError:
    return pickle.UnpicklingError(f"refusing {call}")


def _safe_bytes_constructor(kind: type):
    """``bytes``/``bytearray`` from existing data only: ``bytes(10**13)`` would allocate without reading."""
    def construct(*args):
        if args and isinstance(args[0], int):
            raise _refuse(f"{kind.__name__}(<integer>): an allocation, not data")
        return kind(*args)
    return construct


def _latin1_encode(text, encoding="utf-8", *rest):
    """Python 3 pickles of protocol <= 2 store bytes as ``_codecs.encode(str, "latin1")``: allow that only
    (other codecs, e.g. ``hex_codec`` applied again and again, can grow the data without bound)."""
    if not isinstance(text, str) or str(encoding).lower() not in _LATIN1 or rest:
        raise _refuse(f"_codecs.encode with codec {encoding!r}")
    return text.encode("latin1")


def _empty_array_reconstruct(subtype, shape, dtype):
    """numpy pickles always start from an empty array (shape ``(0,)``) and fill it from the data that follows;
    any other shape would allocate memory the pickle does not hold."""

    if subtype is not _NDARRAY_TOKEN or tuple(shape) != (0,):
        raise _refuse(f"numpy _reconstruct of shape {shape!r}")
    return np.ndarray.__new__(np.ndarray, (0,), dtype)


_SAFE_FUNCTIONS = {("builtins", "bytes"): _safe_bytes_constructor(bytes),
                   ("builtins", "bytearray"): _safe_bytes_constructor(bytearray),
                   ("_codecs", "encode"): _latin1_encode}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, allow_numpy: bool):
        super().__init__(file, encoding="bytes")
        self._allow_numpy = allow_numpy

    def find_class(self, module: str, name: str):
        if module == "__builtin__":          # Python 2 pickles
            module = "builtins"
        if (module, name) in _SAFE_FUNCTIONS:
            return _SAFE_FUNCTIONS[(module, name)]
        if module == "builtins" and name in _SAFE_BUILTINS:
            return super().find_class(module, name)
        if self._allow_numpy and (module, name) in _NUMPY_RECONSTRUCT:
            return _empty_array_reconstruct
        if self._allow_numpy and (module, name) == ("numpy", "ndarray"):
            return _NDARRAY_TOKEN
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
    except MemoryError:
        raise ToolkitError(f"{source}: corrupt pickle (it asks for more memory than exists)") from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError, UnicodeDecodeError) as error:
        raise ToolkitError(f"{source}: corrupt pickle ({type(error).__name__}: {error})") from None


def load_pickle_file(path: str, what: str, *, allow_numpy: bool = False):
    """Read and unpickle a file the user named, through :func:`restricted_loads`."""
    return restricted_loads(read_file_bytes(path, what), source=path, allow_numpy=allow_numpy)
