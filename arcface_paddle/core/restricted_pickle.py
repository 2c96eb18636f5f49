"""Unpickle bytes a user handed us while allowing only plain data (and numpy arrays when asked).

Kept by hand because no library does it: a crafted pickle that tries to import anything (``os.system``...)
is refused, and so is one that asks for memory it does not hold (``bytes(10**13)``, codecs that grow data,
numpy arrays of a declared shape).  Verification ``.bin`` files, shards and reference indexes are read with it.

A pickle can also *amplify* without any global: the memo lets 2 bytes refer again to an object of any size,
so a 138 KB file can hold a list of 10⁵ references to one 15 KB image (a 1.5 GB array once stacked), or a
tuple nested 60 deep in which each level holds the one below twice (hashing it as a dict key never ends).
So every pickle's *expanded* size — each object counted as often as it is reached, as a consumer walking
it would — is capped at :data:`EXPANSION_RATIO` × its file size (at least :data:`EXPANSION_FLOOR`, at most
:data:`EXPANSION_LIMIT`): checked on the opcode stream before loading (catches the hashing bomb and most
amplification without building anything) and exactly on the loaded object graph after.
"""
from __future__ import annotations

import io
import pickle
import pickletools

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

EXPANSION_RATIO = 16                 # expanded size may be this many times the file size ...
EXPANSION_FLOOR = 64 << 20           # ... but small files may always expand to 64 MiB ...
EXPANSION_LIMIT = 8 << 30            # ... and no file beyond 8 GiB
MAX_NESTING = 100                    # containers inside containers; real data nests a few levels
_ITEM = 8                            # what one object or reference counts for, besides its payload


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


def _safe_str(*args):
    """``str`` of text, bytes or numbers only: ``str(container)`` would write out every shared reference."""
    if args and not isinstance(args[0], (str, bytes, bytearray, int, float)):
        raise _refuse(f"str(<{type(args[0]).__name__}>)")
    return str(*args)


_SAFE_FUNCTIONS = {("builtins", "bytes"): _safe_bytes_constructor(bytes),
                   ("builtins", "bytearray"): _safe_bytes_constructor(bytearray),
                   ("builtins", "str"): _safe_str,
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


class _Expanded(Exception):
    """The pickle expands past the limit (message: what was being built)."""


def expansion_limit(file_size: int) -> int:
    return min(EXPANSION_LIMIT, max(EXPANSION_FLOOR, EXPANSION_RATIO * int(file_size)))


_PUSH_OPS = {"NONE", "NEWTRUE", "NEWFALSE", "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4",
             "FLOAT", "BINFLOAT", "EMPTY_LIST", "EMPTY_TUPLE", "EMPTY_DICT", "EMPTY_SET", "STRING", "BINSTRING",
             "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "UNICODE",
             "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "GLOBAL", "EXT1", "EXT2", "EXT4"}
_GROW_BY_MARK = {"APPENDS", "SETITEMS", "ADDITEMS"}
_BUILD_FROM_MARK = {"LIST", "TUPLE", "DICT", "FROZENSET", "OBJ", "INST"}
_IGNORED_OPS = {"PROTO", "FRAME", "READONLY_BUFFER", "STOP"}


def _scan_opcodes(data: bytes, limit: int) -> None:
    """Simulate the unpickler's stack with sizes instead of objects; raise _Expanded past ``limit``.

    Each stack entry is a one-element list (a cell) shared with the memo, so a container that grows after
    it was memoised is seen grown wherever it is fetched again.  (An object added to a container and grown
    afterwards is counted at its earlier size here; the exact walk after loading catches that case.)
    """
    stack, memo = [], {}
    mark = None

    def pop_to_mark() -> int:
        total = 0
        while True:
            cell = stack.pop()
            if cell is mark:
                return total
            total += cell[0]

    for op, arg, _ in pickletools.genops(data):
        name = op.name
        if name in _PUSH_OPS:
            stack.append([_ITEM + (len(arg) if isinstance(arg, (bytes, str)) else 0)])
        elif name in _IGNORED_OPS:
            continue
        elif name == "MARK":
            stack.append(mark)
        elif name == "POP":
            stack.pop()
        elif name == "POP_MARK":
            pop_to_mark()
        elif name == "DUP":
            stack.append(stack[-1])
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo.get(arg, [_ITEM]))      # a missing memo entry fails in the real load
        elif name == "APPEND":
            stack[-2][0] += stack.pop()[0]
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            stack[-1][0] += key[0] + value[0]
        elif name in _GROW_BY_MARK:
            total = pop_to_mark()
            stack[-1][0] += total
        elif name in _BUILD_FROM_MARK:
            stack.append([_ITEM + pop_to_mark()])
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            count = int(name[-1])
            items = [stack.pop()[0] for _ in range(count)]
            stack.append([_ITEM + sum(items)])
        elif name in ("STACK_GLOBAL", "REDUCE", "NEWOBJ"):       # two entries → one result of their size
            args, _callable = stack.pop(), stack.pop()
            stack.append([_ITEM + args[0]])
        elif name == "NEWOBJ_EX":
            kwargs, args, _cls = stack.pop(), stack.pop(), stack.pop()
            stack.append([_ITEM + args[0] + kwargs[0]])
        elif name == "BUILD":
            stack[-1][0] += stack.pop()[0]
        else:                                  # PERSID, BINPERSID, NEXT_BUFFER: never in plain data
            raise pickle.UnpicklingError(f"refusing opcode {name}")
        if stack and stack[-1] is not mark and stack[-1][0] > limit:
            raise _Expanded(f"{name} at an expanded size over {limit >> 20} MiB")


def _expanded_size(root, limit: int) -> int:
    """Exact expanded size of a loaded object graph (shared objects counted each time they are reached),
    computed once per distinct object; raise _Expanded past ``limit``, on a cycle or on deep nesting."""
    sizes: dict[int, int] = {}
    stack = [(root, False, 0)]
    open_ids = set()
    while stack:
        obj, done, depth = stack.pop()
        key = id(obj)
        if done:
            open_ids.discard(key)
            sizes[key] = min(limit + 1, _ITEM + sum(sizes[id(child)] for child in _children(obj)))
            if sizes[key] > limit:
                raise _Expanded(f"{type(obj).__name__} of an expanded size over {limit >> 20} MiB")
            continue
        if key in sizes:
            continue
        if key in open_ids:
            raise _Expanded("a container that contains itself")
        children = _children(obj)
        if children is None:
            sizes[key] = _ITEM + _payload(obj)
            if sizes[key] > limit:
                raise _Expanded(f"{type(obj).__name__} of {sizes[key] >> 20} MiB")
            continue
        if depth >= MAX_NESTING:
            raise _Expanded(f"containers nested over {MAX_NESTING} deep")
        open_ids.add(key)
        stack.append((obj, True, depth))
        stack.extend((child, False, depth + 1) for child in children if id(child) not in sizes)
    return sizes[id(root)]


def _children(obj):
    if isinstance(obj, dict):
        return [item for pair in obj.items() for item in pair]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        return list(obj.flat)
    return None


def _payload(obj) -> int:
    if isinstance(obj, (bytes, bytearray, str)):
        return len(obj)
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, int):
        return obj.bit_length() // 8
    return 0


def restricted_loads(data: bytes, *, source: str, allow_numpy: bool = False):
    """Unpickle ``data`` allowing only plain data (and numpy arrays when ``allow_numpy``).

    ``source`` names the file in the error message.  Any disallowed global, a malformed pickle or one that
    expands past :func:`expansion_limit` of its size raises :class:`ToolkitError`.
    """
    limit = expansion_limit(len(data))
    try:
        _scan_opcodes(data, limit)
        loaded = _RestrictedUnpickler(io.BytesIO(data), allow_numpy).load()
        _expanded_size(loaded, limit)
        return loaded
    except _Expanded as error:
        raise ToolkitError(f"{source}: refusing a pickle that expands far beyond its {len(data):,} bytes "
                           f"({error}; limit {EXPANSION_RATIO}× the file, at least {EXPANSION_FLOOR >> 20} MiB)"
                           ) from None
    except pickle.UnpicklingError as error:
        raise ToolkitError(f"{source}: unsafe or corrupt pickle ({error})") from None
    except MemoryError:
        raise ToolkitError(f"{source}: corrupt pickle (it asks for more memory than exists)") from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError, UnicodeDecodeError) as error:
        raise ToolkitError(f"{source}: corrupt pickle ({type(error).__name__}: {error})") from None


def load_pickle_file(path: str, what: str, *, allow_numpy: bool = False):
    """Read and unpickle a file the user named, through :func:`restricted_loads`."""
    return restricted_loads(read_file_bytes(path, what), source=path, allow_numpy=allow_numpy)
