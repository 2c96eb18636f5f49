"""Per-image shards in the reference ``MS1M_bin`` format, read safely.

One file per image, ``images/%08d.bin``::

    uint32 LE key length | key (original relative file name, UTF-8) | uint32 LE value length | value

where ``value = pickle.dumps(encoded_image_bytes)``.  ``label.txt`` lists ``images/00000000.bin<TAB>label``.
The value pickle is loaded with :func:`restricted_loads` (no code, no allocation it was not given the data
for) and must be ``bytes``, so a crafted shard can neither run code nor exhaust memory.  Datasets are
written shard by shard (each atomically) and ``label.txt`` last, so an interrupted conversion never looks
complete.
"""
from __future__ import annotations

import os
import pickle
import struct

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.restricted_pickle import restricted_loads
from arcface_paddle.core.safe_io import atomic_save_bytes, check_relative_path, read_file_bytes
from arcface_paddle.data.label_file import CLASSES_FILE, LABEL_FILE, write_classes, write_label_file

_LEN = struct.Struct("<I")
# The reference writes pickle.dumps(image, -1), protocol 5 on Python 3.8+; for bytes it is the same
# SHORT_BINBYTES/BINBYTES8 as protocol 4, which every Python >= 3.4 reads.
PICKLE_PROTOCOL = 4


def shard_name(index: int) -> str:
    """Relative path of the ``index``-th shard: ``images/00000042.bin``."""
    return f"images/{index:08d}.bin"


def encode_record(key: str, image_bytes: bytes) -> bytes:
    key_bytes = key.encode("utf-8")
    value = pickle.dumps(bytes(image_bytes), protocol=PICKLE_PROTOCOL)
    return _LEN.pack(len(key_bytes)) + key_bytes + _LEN.pack(len(value)) + value


def decode_record(data: bytes, source: str) -> tuple[str, bytes]:
    """Shard file content → (key, encoded image bytes); any inconsistency raises ToolkitError naming ``source``."""
    if len(data) < 4:
        raise ToolkitError(f"{source}: truncated shard ({len(data)} bytes, no key length)")
    (key_len,) = _LEN.unpack_from(data, 0)
    if 4 + key_len + 4 > len(data):
        raise ToolkitError(f"{source}: truncated shard (key of {key_len} bytes does not fit in {len(data)} bytes)")
    try:
        key = data[4:4 + key_len].decode("utf-8")
    except UnicodeDecodeError:
        raise ToolkitError(f"{source}: corrupt shard (key is not UTF-8)") from None
    check_relative_path(key, source, "key")          # the original relative file name, nothing else
    (value_len,) = _LEN.unpack_from(data, 4 + key_len)
    start = 8 + key_len
    if start + value_len > len(data):
        raise ToolkitError(f"{source}: truncated shard (value needs {value_len} bytes, "
                           f"found {len(data) - start})")
    if start + value_len != len(data):
        raise ToolkitError(f"{source}: corrupt shard ({len(data) - start - value_len} trailing bytes)")
    value = restricted_loads(data[start:], source=source)
    if isinstance(value, bytearray):
        value = bytes(value)
    if not isinstance(value, bytes):
        raise ToolkitError(f"{source}: corrupt shard (value is {type(value).__name__}, expected image bytes)")
    return key, value


def read_shard(path: str | os.PathLike) -> tuple[str, bytes]:
    path = os.fspath(path)
    return decode_record(read_file_bytes(path, "shard"), path)


def write_shard(path: str | os.PathLike, key: str, image_bytes: bytes) -> None:
    atomic_save_bytes(path, encode_record(key, image_bytes))


def write_shard_dataset(root: str | os.PathLike, records, class_names=None) -> int:
    """Write ``(key, image_bytes, label)`` records as shards 0..N-1, then ``label.txt`` (and ``classes.txt``)."""
    root = os.fspath(root)
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    entries = []
    for index, (key, image_bytes, label) in enumerate(records):
        name = shard_name(index)
        write_shard(os.path.join(root, name), key, image_bytes)
        entries.append((name, int(label)))
    if class_names is not None:
        write_classes(os.path.join(root, CLASSES_FILE), class_names)
    write_label_file(os.path.join(root, LABEL_FILE), entries)
    return len(entries)
