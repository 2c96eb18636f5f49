"""One VisualDL records file per run, continued across resumes.

VisualDL 2.5.3 shows only the newest ``vdlrecords.*.log`` of a folder, and every ``LogWriter`` starts a new
one, so after a resume the curves before it would vanish from the board.  At every start the trainer calls
:func:`continue_records`: the scalars the run already logged up to the step it restarts from are copied
(with their original wall times) into a new records file, which the run then keeps writing, and the run's
older files are removed once the new one is complete.  The run's files are the ones its config history
names (:mod:`.run_config`); files it does not know (another run sharing the folder) are never removed.
Points logged after the checkpoint by a run that was killed are dropped: the resumed run logs those steps
again (the same values — resume is exact), and one step never shows two points.
"""
from __future__ import annotations

import os
import struct
import time
from typing import Dict, Iterator, List, Optional, Tuple

RECORDS_MARK = "vdlrecords"


def records_files(logdir: str) -> List[str]:
    """The VisualDL records files directly in ``logdir``, oldest first (VisualDL orders them by name)."""
    if not os.path.isdir(logdir):
        return []
    return sorted(os.path.join(logdir, name) for name in os.listdir(logdir)
                  if RECORDS_MARK in name and os.path.isfile(os.path.join(logdir, name)))


def _records(path: str) -> Iterator[bytes]:
    """The serialised records of a VisualDL file (each a little-endian uint64 length, then the bytes).  Read
    here rather than by VisualDL's reader, which cannot tell a record cut short by a killed run from a whole
    one; such a tail ends the reading."""
    with open(path, "rb") as handle:
        while True:
            header = handle.read(8)
            if len(header) < 8:
                return
            length = struct.unpack("<Q", header)[0]
            data = handle.read(length)
            if len(data) < length:
                return
            yield data


def read_scalars(path: str) -> Dict[str, List[Tuple[int, int, float]]]:
    """``{tag: [(step, wall time ms, value), ...]}`` of one records file (VisualDL's record format)."""
    from google.protobuf.message import DecodeError  # installed with paddle and visualdl
    from visualdl.proto.record_pb2 import Record  # slow to import: only when a run has records to carry over

    scalars: Dict[str, List[Tuple[int, int, float]]] = {}
    for data in _records(path):
        record = Record()
        try:
            record.ParseFromString(data)
        except DecodeError:
            break
        for value in record.values:
            if value.WhichOneof("one_value") == "value":
                scalars.setdefault(value.tag, []).append((int(value.id), int(value.timestamp), float(value.value)))
    return scalars


def _new_records_name(existing: List[str]) -> str:
    """``vdlrecords.<seconds>.log``, later in VisualDL's (reverse name) order than every existing file."""
    stamp = int(time.time())
    for path in existing:
        parts = os.path.basename(path).split(".")
        if len(parts) > 1 and parts[1].isdigit():
            stamp = max(stamp, int(parts[1]) + 1)
    return f"{RECORDS_MARK}.{stamp:010d}.log"


def continue_records(logdir: str, start_step: int, own_files: Optional[List[str]] = None) -> Tuple[str, int]:
    """Start ``logdir``'s new records file holding every scalar the run logged at steps ``<= start_step``.

    ``own_files``: the run's earlier records files, oldest first (any folder) — carried over, then removed;
    None (a run from before config histories named them): every file in ``logdir`` is carried over, none
    removed.  Returns ``(file name for LogWriter(file_name=...), points carried over)``.
    """
    existing = records_files(logdir)
    name = _new_records_name(existing)
    sources = [path for path in own_files if os.path.isfile(path)] if own_files is not None else existing
    merged: Dict[Tuple[str, int], Tuple[int, float]] = {}
    for path in sources:                        # later files win for a step logged twice
        for tag, points in read_scalars(path).items():
            for step, walltime, value in points:
                if step <= start_step:
                    merged[(tag, step)] = (walltime, value)
    if merged:
        from visualdl import LogWriter  # slow to import: only when a run has records to carry over

        writer = LogWriter(logdir=logdir, file_name=name)
        for (tag, step), (walltime, value) in sorted(merged.items(), key=lambda item: (item[0][1], item[0][0])):
            writer.add_scalar(tag=tag, value=value, step=step, walltime=walltime)
        writer.close()
    new_path = os.path.realpath(os.path.join(logdir, name))
    for path in sources if own_files is not None else []:     # the new file holds all they had that is kept
        if os.path.realpath(path) != new_path:
            os.unlink(path)
    return name, len(merged)

