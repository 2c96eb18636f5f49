"""Conversions behind ``tools/convert_image_bin.py``: image tree ↔ shards, RecordIO → shards, label files.

Work is split into chunks handled by a process pool (``workers``, see :mod:`.parallel_chunks`); every shard
is written atomically and ``label.txt`` is written last, so an interrupted run never leaves a dataset that
looks complete.  If a run fails (a full disk, Ctrl-C, a bad record), the files it wrote are removed again and
the error says so: the output folder is as it was before (a rerun starts clean; nothing half-done stays).
Undecodable images, oversized ones (declared size above ``MAX_PIXELS``) and anything that is not a regular
file (a FIFO named ``x.jpg``) are skipped and reported, never stored.  Input and output folders must not
overlap.  Shard numbers follow input order; a skipped image leaves its number unused (``label.txt`` lists
exactly the shards that exist).
"""
from __future__ import annotations

import contextlib
import itertools
import math
import os
import time
from dataclasses import dataclass, field

from arcface_paddle.core.errors import ToolkitError, reason_for
from arcface_paddle.core.images import decode_image
from arcface_paddle.core.safe_io import (
    atomic_save_bytes,
    atomic_write,
    check_output_file,
    check_regular_file,
    read_file_bytes,
    refuse_overlapping_folders,
    refuse_overwriting_inputs,
    resolve_inside,
)
from arcface_paddle.data import recordio
from arcface_paddle.data.conversion_output import prepare_output, undone_on_failure
from arcface_paddle.data.label_file import (
    CLASSES_FILE,
    LABEL_FILE,
    MAX_LABEL,
    check_entries_inside,
    read_label_file,
    scan_identity_tree,
    write_classes,
    write_label_file,
)
from arcface_paddle.data.parallel_chunks import CHUNK, default_workers, run_chunks, split
from arcface_paddle.data.shard_format import read_shard, shard_name, write_shard


@dataclass
class ConversionReport:
    images: int = 0
    identities: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)     # (source, reason)
    seconds: float = 0.0
    bytes_written: int = 0

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def _store_image(out: str, index: int, rel: str, data: bytes, label: int, source: str, shown: str,
                 written: list, skipped: list) -> int:
    """Write ``data`` as shard ``index`` when it decodes within the size limit, else list it in ``skipped`` as
    ``shown`` with the reason; returns the bytes written."""
    try:
        decode_image(data, source)
    except ToolkitError as error:
        skipped.append((shown, reason_for(error, source)))
        return 0
    name = shard_name(index)
    write_shard(os.path.join(out, name), rel, data)
    written.append((name, label))
    return len(data)


# ---- image tree → shards ---------------------------------------------------------------------------

def _image_chunk_task(args):
    root, out, chunk = args
    written, skipped, nbytes = [], [], 0
    for index, rel, label in chunk:
        path = os.path.join(root, rel)
        try:
            data = read_file_bytes(path, "image file")      # regular files only: a FIFO would block forever
        except ToolkitError as error:
            skipped.append((rel, reason_for(error, path)))
            continue
        nbytes += _store_image(out, index, rel, data, label, path, rel, written, skipped)
    return written, skipped, nbytes


def image_to_bin(image_path, bin_path, label_file=None, workers=None, progress=True,
                 overwrite=False) -> ConversionReport:
    """Identity-folder tree (labels from sorted folder names, ``classes.txt`` written) or a flat folder
    with ``label_file`` (paths relative to ``image_path``) → ``bin_path/images/*.bin`` + ``label.txt``."""
    start = time.perf_counter()
    image_path, bin_path = os.fspath(image_path), os.fspath(bin_path)
    if not os.path.isdir(image_path):
        raise ToolkitError(f"{image_path}: image folder not found")
    if label_file is not None:
        entries, classes = read_label_file(label_file), None
        for rel, _ in entries:            # keys must restore inside an output folder later
            safe_output_path(image_path, rel, os.fspath(label_file))
    else:
        entries, classes = scan_identity_tree(image_path)
    items = [(i, rel, label) for i, (rel, label) in enumerate(entries)]
    refuse_overlapping_folders(image_path, bin_path, "--image_path", "--bin_path")
    created = prepare_output(bin_path, overwrite, "images")
    report = ConversionReport()
    labels_written = []
    chunks = [(image_path, bin_path, c) for c in split(items)]
    shard_paths = lambda: (os.path.join(bin_path, shard_name(i)) for i, _, _ in items)  # noqa: E731
    with undone_on_failure(bin_path, created, shard_paths):
        with contextlib.closing(run_chunks(_image_chunk_task, chunks, default_workers(workers), len(items),
                                           "image2bin", progress)) as results:
            for written, skipped, nbytes in results:
                labels_written += written
                report.skipped += skipped
                report.bytes_written += nbytes
        if not labels_written:
            raise ToolkitError(f"{image_path}: no decodable images ({len(report.skipped)} skipped)")
        if classes is not None:
            write_classes(os.path.join(bin_path, CLASSES_FILE), classes)
        write_label_file(os.path.join(bin_path, LABEL_FILE), labels_written)
    report.images = len(labels_written)
    report.identities = len({label for _, label in labels_written})
    report.seconds = time.perf_counter() - start
    return report


def write_tree_labels(image_path, label_file=None) -> ConversionReport:
    """Only write ``label.txt`` (+ ``classes.txt``) for a raw identity-folder tree (``txt_annotation``)."""
    start = time.perf_counter()
    entries, classes = scan_identity_tree(image_path)
    label_file = label_file or os.path.join(os.fspath(image_path), LABEL_FILE)
    classes_file = os.path.join(os.path.dirname(os.path.abspath(label_file)), CLASSES_FILE)
    check_output_file(label_file, "label file")
    refuse_overwriting_inputs([label_file, classes_file], [os.path.join(image_path, rel) for rel, _ in entries])
    write_label_file(label_file, entries)
    write_classes(classes_file, classes)
    return ConversionReport(images=len(entries), identities=len(classes), seconds=time.perf_counter() - start)


# ---- shards → image tree ---------------------------------------------------------------------------

def safe_output_path(out_root: str, key: str, source: str) -> str:
    """Where shard key ``key`` goes under ``out_root``; keys that would escape it raise ToolkitError."""
    return resolve_inside(out_root, key, source, "key")


def _bin_chunk_task(args):
    bin_root, out, chunk = args
    restored, nbytes = [], 0
    try:
        for rel, label in chunk:
            source = os.path.join(bin_root, rel)
            key, data = read_shard(source)
            atomic_save_bytes(safe_output_path(out, key, source), data)
            restored.append((rel, key, label))
            nbytes += len(data)
    except BaseException:
        for _, key, _ in restored:     # the caller only learns of a chunk that completes: undo this one here
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(out, key))
        raise
    return restored, nbytes


def bin_to_image(bin_path, image_path, workers=None, progress=True, overwrite=False) -> ConversionReport:
    """Shards → the original files under ``image_path`` (byte-exact), plus ``label.txt`` of their labels."""
    start = time.perf_counter()
    bin_path, image_path = os.fspath(bin_path), os.fspath(image_path)
    label_path = os.path.join(bin_path, LABEL_FILE)
    entries = read_label_file(label_path)
    check_entries_inside(entries, bin_path, label_path)
    refuse_overlapping_folders(bin_path, image_path, "--bin_path", "--image_path")
    created = prepare_output(image_path, overwrite)
    report, restored, shard_of_key = ConversionReport(), [], {}
    chunks = [(bin_path, image_path, c) for c in split(entries)]
    restored_paths = lambda: [os.path.join(image_path, key) for key in shard_of_key]  # noqa: E731
    with undone_on_failure(image_path, created, restored_paths), \
            contextlib.closing(run_chunks(_bin_chunk_task, chunks, default_workers(workers), len(entries),
                                          "bin2image", progress)) as results:
        for part, nbytes in results:
            for rel, key, label in part:
                # Two shards with one key (the reference stored bare file names) restore to one file: say so.
                first = shard_of_key.setdefault(key, rel)
                if first != rel:
                    raise ToolkitError(f"{os.path.join(bin_path, rel)}: key {key!r} was already restored from "
                                       f"{first} (duplicate keys: the second file would replace the first)")
                restored.append((key, label))
            report.bytes_written += nbytes
        classes = os.path.join(bin_path, CLASSES_FILE)
        if os.path.isfile(classes):
            atomic_save_bytes(os.path.join(image_path, CLASSES_FILE), read_file_bytes(classes, "classes file"))
        write_label_file(os.path.join(image_path, LABEL_FILE), restored)
    report.images = len(restored)
    report.identities = len({label for _, label in restored})
    report.seconds = time.perf_counter() - start
    return report


# ---- RecordIO → shards -----------------------------------------------------------------------------

_EXTENSIONS = ((b"\xff\xd8", ".jpg"), (b"\x89PNG", ".png"), (b"BM", ".bmp"), (b"RIFF", ".webp"))


def _guess_ext(data: bytes) -> str:
    for magic, ext in _EXTENSIONS:
        if data.startswith(magic):
            return ext
    return ".jpg"


def _rec_chunk_task(args):
    rec_path, out, chunk = args
    written, skipped, nbytes = [], [], 0
    with open(rec_path, "rb") as handle:
        for index, key, offset in chunk:
            payload, _ = recordio.read_record_at(handle, offset, rec_path)
            where = f"record {key} (byte offset {offset})"
            header, image = recordio.unpack_irheader(payload, f"{rec_path} {where}")
            if not (math.isfinite(header.label[0]) and 0 <= header.label[0] <= MAX_LABEL):
                skipped.append((where, f"label {header.label[0]!r} is not an identity number in [0, {MAX_LABEL}]"))
                continue
            label = int(header.label[0])
            rel = f"{label:07d}/{key}{_guess_ext(image)}"     # zero-padded: sorted folders keep label order
            nbytes += _store_image(out, index, rel, image, label, where, where, written, skipped)
    return written, skipped, nbytes


def rec_to_bin(rec, idx, bin_path, workers=None, progress=True, overwrite=False) -> ConversionReport:
    """MXNet ``train.rec`` + ``train.idx`` → shards + ``label.txt`` (keys ``<label:07d>/<record key>.jpg``).

    Streams the index and the records (constant memory: nothing grows with the dataset except the set
    of identities); header and identity records are skipped.
    """
    start = time.perf_counter()
    rec, idx, bin_path = os.fspath(rec), os.fspath(idx), os.fspath(bin_path)
    check_regular_file(rec, "RecordIO file")
    total = sum(1 for _ in recordio.iter_image_entries(rec, idx))
    entries = ((i, key, offset) for i, (key, offset) in enumerate(recordio.iter_image_entries(rec, idx)))
    chunks = ((rec, bin_path, list(group)) for group in iter(lambda: list(itertools.islice(entries, CHUNK)), []))
    created = prepare_output(bin_path, overwrite, "images")
    report, identities = ConversionReport(), set()
    shard_paths = lambda: (os.path.join(bin_path, shard_name(i)) for i in range(total))  # noqa: E731
    with undone_on_failure(bin_path, created, shard_paths):
        with atomic_write(os.path.join(bin_path, LABEL_FILE), "w") as label_handle, \
                contextlib.closing(run_chunks(_rec_chunk_task, chunks, default_workers(workers), total, "rec2bin",
                                              progress)) as results:
            for written, skipped, nbytes in results:
                for name, label in written:
                    label_handle.write(f"{name}\t{label}\n")
                    identities.add(label)
                report.images += len(written)
                report.skipped += skipped
                report.bytes_written += nbytes
            if not report.images:
                raise ToolkitError(f"{rec}: no decodable image records ({len(report.skipped)} skipped)")
    report.identities = len(identities)
    report.seconds = time.perf_counter() - start
    return report
