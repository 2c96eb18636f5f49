"""MXNet RecordIO (``train.rec`` + ``train.idx``) read and written without MXNet.

Record layout (dmlc-core): ``uint32 magic 0xced7230a | uint32 lrecord | data | zero padding to 4 bytes``,
``cflag = lrecord >> 29`` and ``length = lrecord & (2**29 - 1)``.  A payload that contains the magic
word at a 4-byte aligned position is split there: parts carry cflag 1 (first), 2 (middle), 3 (last)
and the reader re-inserts the magic between them.  ``.idx`` lines are ``key<TAB>byte offset``.

InsightFace payloads start with an IRHeader ``struct '<IfQQ'`` (flag, label, id, id2); ``flag > 0``
means ``flag`` float32 labels follow the header instead of the single ``label``.  Record 0 is a header
record whose labels give the first identity-record key: images are keys ``1 .. label[0]-1``.
"""
from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.safe_io import atomic_write, check_regular_file

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_HEAD = struct.Struct("<II")
_IR = struct.Struct("<IfQQ")
_LENGTH_MASK = (1 << 29) - 1


@dataclass(frozen=True)
class IRHeader:
    flag: int
    label: tuple[float, ...]
    id: int
    id2: int


def pack_irheader(flag: int, label, id: int, id2: int, payload: bytes) -> bytes:
    """IRHeader + payload; a sequence label is stored as ``len(label)`` floats after the header.

    As in MXNet's ``recordio.pack``, ``flag`` follows from ``label``: 0 for a single number (a non-zero
    flag there would announce labels that are not written), ``len(label)`` for a sequence.
    """
    if isinstance(label, (int, float)):
        return _IR.pack(0, float(label), id, id2) + payload
    labels = [float(x) for x in label]
    return _IR.pack(len(labels), 0.0, id, id2) + struct.pack(f"<{len(labels)}f", *labels) + payload


def unpack_irheader(record: bytes, source: str) -> tuple[IRHeader, bytes]:
    if len(record) < _IR.size:
        raise ToolkitError(f"{source}: record of {len(record)} bytes is shorter than an IRHeader")
    flag, label, rid, rid2 = _IR.unpack_from(record, 0)
    if flag == 0:
        return IRHeader(0, (label,), rid, rid2), record[_IR.size:]
    end = _IR.size + 4 * flag
    if end > len(record):
        raise ToolkitError(f"{source}: IRHeader announces {flag} labels but the record has {len(record)} bytes")
    labels = struct.unpack_from(f"<{flag}f", record, _IR.size)
    return IRHeader(flag, labels, rid, rid2), record[end:]


def read_record_at(handle, offset: int, source: str) -> tuple[bytes, int]:
    """Read the (possibly multi-part) record starting at byte ``offset`` → (payload, offset after it)."""
    handle.seek(offset)
    parts, position = [], offset
    while True:
        head = handle.read(8)
        if not head and not parts and position == offset:
            raise ToolkitError(f"{source}: no record at byte offset {offset} (end of file)")
        if len(head) < 8:
            raise ToolkitError(f"{source}: truncated record header at byte offset {position}")
        magic, lrecord = _HEAD.unpack(head)
        if magic != MAGIC:
            raise ToolkitError(f"{source}: bad magic 0x{magic:08x} at byte offset {position} (not a RecordIO record)")
        cflag, length = lrecord >> 29, lrecord & _LENGTH_MASK
        remaining = os.fstat(handle.fileno()).st_size - position - 8
        if length > remaining:           # checked before reading: a crafted length would allocate up to 512 MB
            raise ToolkitError(f"{source}: truncated record at byte offset {position} "
                               f"(needs {length} bytes, only {max(remaining, 0)} remain)")
        data = handle.read(length)
        if len(data) < length:
            raise ToolkitError(f"{source}: truncated record at byte offset {position} "
                               f"(needs {length} bytes, only {len(data)} remain)")
        pad = (-length) % 4
        if pad:
            handle.read(pad)
        position += 8 + length + pad
        expected_first = not parts
        if expected_first and cflag not in (0, 1):
            raise ToolkitError(f"{source}: record at byte offset {position - 8 - length - pad} starts "
                               f"mid-record (cflag {cflag})")
        if not expected_first and cflag not in (2, 3):
            raise ToolkitError(f"{source}: record part at byte offset {position - 8 - length - pad} "
                               f"has cflag {cflag}, expected a continuation")
        parts.append(data)
        if cflag in (0, 3):
            return _MAGIC_BYTES.join(parts), position


def iter_records(path):
    """Every record of a ``.rec`` file in order: (byte offset, payload)."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        offset = 0
        while offset < size:
            payload, next_offset = read_record_at(handle, offset, path)
            yield offset, payload
            offset = next_offset


def iter_idx(path):
    """Stream ``.idx`` entries ``(key, offset)`` in file order; malformed lines raise ToolkitError naming the line."""
    path = check_regular_file(os.fspath(path), "index file")
    with open(path, "rb") as handle:        # streamed: an .idx of millions of lines is never held whole
        for number, raw in enumerate(handle, 1):
            line = raw.decode("ascii", errors="replace")
            if not line.strip():
                continue
            parts = line.split()
            try:
                key, offset = int(parts[0]), int(parts[1])
            except (ValueError, IndexError):
                raise ToolkitError(f"{path}:{number}: expected 'key<TAB>offset', got {line.strip()[:80]!r}") from None
            if key < 0 or offset < 0:
                raise ToolkitError(f"{path}:{number}: negative key or offset in {line.strip()[:80]!r}")
            yield key, offset


class RecordIOWriter:
    """Writes ``.rec`` + ``.idx`` (both atomically, on ``close``), splitting payloads at aligned magic words."""

    def __init__(self, rec_path, idx_path):
        self._rec_ctx = atomic_write(rec_path, "wb")
        self._idx_ctx = atomic_write(idx_path, "w")
        self._rec = self._rec_ctx.__enter__()
        self._idx = self._idx_ctx.__enter__()
        self._offset = 0

    def write(self, key: int, payload: bytes) -> int:
        """Append one record; returns its byte offset."""
        offset = self._offset
        chunks, start = [], 0
        for position in range(0, len(payload) - 3, 4):
            if payload[position:position + 4] == _MAGIC_BYTES:
                chunks.append(payload[start:position])
                start = position + 4
        chunks.append(payload[start:])
        for i, chunk in enumerate(chunks):
            if len(chunks) == 1:
                cflag = 0
            else:
                cflag = 1 if i == 0 else 3 if i == len(chunks) - 1 else 2
            self._rec.write(_HEAD.pack(MAGIC, (cflag << 29) | len(chunk)) + chunk + b"\0" * ((-len(chunk)) % 4))
            self._offset += 8 + len(chunk) + (-len(chunk)) % 4
        self._idx.write(f"{key}\t{offset}\n")
        return offset

    def close(self) -> None:
        self._rec_ctx.__exit__(None, None, None)
        self._idx_ctx.__exit__(None, None, None)

    def abort(self, error: BaseException) -> None:
        for ctx in (self._rec_ctx, self._idx_ctx):
            try:
                ctx.__exit__(type(error), error, error.__traceback__)
            except BaseException:
                pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            self.close()
        else:
            self.abort(exc)
        return False


def write_insightface_rec(rec_path, idx_path, samples) -> None:
    """Write ``(label, encoded image bytes)`` samples the InsightFace way: header record 0, image records
    1..N, then one record per identity whose labels are its (first, last + 1) image keys."""
    samples = list(samples)
    by_label: dict[int, list[int]] = {}
    for key, (label, _) in enumerate(samples, 1):
        by_label.setdefault(int(label), []).append(key)
    first_identity_key = len(samples) + 1
    with RecordIOWriter(rec_path, idx_path) as writer:
        writer.write(0, pack_irheader(2, (first_identity_key, first_identity_key + len(by_label)), 0, 0, b""))
        for key, (label, image) in enumerate(samples, 1):
            writer.write(key, pack_irheader(0, float(label), key, 0, image))
        for i, label in enumerate(sorted(by_label)):
            keys = by_label[label]
            writer.write(first_identity_key + i, pack_irheader(2, (keys[0], keys[-1] + 1), 0, 0, b""))


def image_key_range(rec_path, idx_path) -> tuple[int, int | None]:
    """Keys that hold images, as ``[first, end)`` (``end`` None: unbounded).

    InsightFace files start with header record 0 whose first label is the first identity-record key:
    images are keys ``1 .. label[0]-1``.  Without such a header every key is an image.
    """
    for key, offset in iter_idx(idx_path):
        if key != 0:
            continue
        with open(rec_path, "rb") as handle:
            payload, _ = read_record_at(handle, offset, os.fspath(rec_path))
        header, _ = unpack_irheader(payload, f"{os.fspath(rec_path)} record 0")
        if header.flag > 0:
            end = header.label[0]
            if not (math.isfinite(end) and 1 <= end <= 2 ** 62):
                raise ToolkitError(f"{os.fspath(rec_path)}: header record 0 gives an impossible image count {end!r}")
            return 1, int(end)
        break
    return 0, None


def iter_image_entries(rec_path, idx_path):
    """Stream the ``(key, offset)`` entries of image records (header and identity records skipped)."""
    first, end = image_key_range(rec_path, idx_path)
    for key, offset in iter_idx(idx_path):
        if key >= first and (end is None or key < end):
            yield key, offset
