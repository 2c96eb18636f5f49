"""Conversions behind ``tools/convert_image_bin.py``: image tree ↔ shards, RecordIO → shards, label files.

Work is split into chunks handled by a process pool (``workers``); every shard is written atomically
and ``label.txt`` is written last, so an interrupted run never leaves a dataset that looks complete.
Undecodable images are skipped and reported, never stored.  Shard numbers follow input order; a
skipped image leaves its number unused (``label.txt`` lists exactly the shards that exist).
"""
from __future__ import annotations

import collections
import itertools
import multiprocessing
import os
import time
from dataclasses import dataclass, field

import cv2
import numpy as np
from tqdm import tqdm

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.safe_io import atomic_save_bytes, atomic_write
from arcface_paddle.data import recordio
from arcface_paddle.data.label_file import (
    CLASSES_FILE,
    LABEL_FILE,
    read_label_file,
    scan_identity_tree,
    write_classes,
    write_label_file,
)
from arcface_paddle.data.shard_format import read_shard, shard_name, write_shard

CHUNK = 256


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


def _decodable(data: bytes) -> bool:
    buf = np.frombuffer(data, dtype=np.uint8)
    return bool(buf.size) and cv2.imdecode(buf, cv2.IMREAD_COLOR) is not None


def _run_chunks(task, chunks, workers: int, total: int, desc: str, progress: bool):
    """Yield ``task(chunk)`` results in input order, over a process pool when ``workers > 1``.

    ``chunks`` may be a generator: at most ``4 × workers`` chunks are in flight, so memory stays
    constant however long the input is.  Each chunk's last element is the list the progress bar counts.
    """
    bar = tqdm(total=total, desc=desc, unit="img", disable=not progress, dynamic_ncols=True)
    try:
        if workers <= 1:
            for chunk in chunks:
                result = task(chunk)
                bar.update(len(chunk[-1]))
                yield result
            return
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
        with ctx.Pool(workers) as pool:
            in_flight = collections.deque()
            for chunk in chunks:
                in_flight.append((len(chunk[-1]), pool.apply_async(task, (chunk,))))
                if len(in_flight) >= 4 * workers:
                    size, result = in_flight.popleft()
                    yield result.get()
                    bar.update(size)
            while in_flight:
                size, result = in_flight.popleft()
                yield result.get()
                bar.update(size)
    finally:
        bar.close()


def _chunks(items, size=CHUNK):
    return [items[i:i + size] for i in range(0, len(items), size)]


def _prepare_output(folder: str, overwrite: bool) -> None:
    """Refuse to mix a new conversion into a folder that already holds files, unless ``overwrite``.

    With ``overwrite`` the old ``label.txt`` goes first, so an interrupted run cannot leave an old index
    pointing at a mix of old and new files.
    """
    if os.path.isdir(folder) and os.listdir(folder):
        if not overwrite:
            raise ToolkitError(f"{folder}: output folder is not empty (choose a new folder, or --overwrite)")
        label = os.path.join(folder, LABEL_FILE)
        if os.path.exists(label):
            os.unlink(label)
    os.makedirs(folder, exist_ok=True)


def _usable_cores() -> int:
    # the cores this process may run on (taskset / container limits), not every core of the machine
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _default_workers(workers):
    return max(1, int(workers if workers else _usable_cores()))


# ---- image tree → shards ---------------------------------------------------------------------------

def _image_chunk_task(args):
    root, out, chunk = args
    written, skipped, nbytes = [], [], 0
    for index, rel, label in chunk:
        path = os.path.join(root, rel)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as error:
            skipped.append((rel, f"cannot read ({error.strerror})"))
            continue
        if not _decodable(data):
            skipped.append((rel, "cannot decode image"))
            continue
        name = shard_name(index)
        write_shard(os.path.join(out, name), rel, data)
        written.append((name, label))
        nbytes += len(data)
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
    _prepare_output(bin_path, overwrite)
    os.makedirs(os.path.join(bin_path, "images"), exist_ok=True)
    report = ConversionReport()
    labels_written = []
    chunks = [(image_path, bin_path, c) for c in _chunks(items)]
    for written, skipped, nbytes in _run_chunks(_image_chunk_task, chunks, _default_workers(workers),
                                                len(items), "image2bin", progress):
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
    write_label_file(label_file, entries)
    write_classes(os.path.join(os.path.dirname(os.path.abspath(label_file)), CLASSES_FILE), classes)
    return ConversionReport(images=len(entries), identities=len(classes), seconds=time.perf_counter() - start)


# ---- shards → image tree ---------------------------------------------------------------------------

def safe_output_path(out_root: str, key: str, source: str) -> str:
    """Where shard key ``key`` goes under ``out_root``; keys that would escape it raise ToolkitError."""
    parts = key.replace("\\", "/").split("/")
    if (not key or key.startswith(("/", "\\")) or os.path.isabs(key) or (len(key) > 1 and key[1] == ":")
            or any(p in ("..", "") for p in parts) or "\0" in key):
        raise ToolkitError(f"{source}: refusing unsafe key {key!r} (absolute path or '..' would write outside the output folder)")
    target = os.path.realpath(os.path.join(out_root, *parts))
    root = os.path.realpath(out_root)
    if os.path.commonpath([root, target]) != root:
        raise ToolkitError(f"{source}: refusing key {key!r} (resolves outside the output folder)")
    return target


def _bin_chunk_task(args):
    bin_root, out, chunk = args
    restored, nbytes = [], 0
    for rel, label in chunk:
        source = os.path.join(bin_root, rel)
        key, data = read_shard(source)
        atomic_save_bytes(safe_output_path(out, key, source), data)
        restored.append((rel, key, label))
        nbytes += len(data)
    return restored, nbytes


def bin_to_image(bin_path, image_path, workers=None, progress=True, overwrite=False) -> ConversionReport:
    """Shards → the original files under ``image_path`` (byte-exact), plus ``label.txt`` of their labels."""
    start = time.perf_counter()
    bin_path, image_path = os.fspath(bin_path), os.fspath(image_path)
    entries = read_label_file(os.path.join(bin_path, LABEL_FILE))
    _prepare_output(image_path, overwrite)
    report, restored, shard_of_key = ConversionReport(), [], {}
    chunks = [(bin_path, image_path, c) for c in _chunks(entries)]
    for part, nbytes in _run_chunks(_bin_chunk_task, chunks, _default_workers(workers), len(entries),
                                    "bin2image", progress):
        for rel, key, label in part:
            # Two shards with one key (the reference stored bare file names) restore to one file: say so.
            first = shard_of_key.setdefault(key, rel)
            if first != rel:
                raise ToolkitError(f"{os.path.join(bin_path, rel)}: key {key!r} was already restored from {first} "
                                   f"(duplicate keys: the second file would replace the first)")
            restored.append((key, label))
        report.bytes_written += nbytes
    classes = os.path.join(bin_path, CLASSES_FILE)
    if os.path.isfile(classes):
        with open(classes, "rb") as src, atomic_write(os.path.join(image_path, CLASSES_FILE), "wb") as dst:
            dst.write(src.read())
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
            header, image = recordio.unpack_irheader(payload, f"{rec_path} record {key} (byte offset {offset})")
            label = int(header.label[0])
            rel = f"{label:07d}/{key}{_guess_ext(image)}"     # zero-padded: sorted folders keep label order
            if not _decodable(image):
                skipped.append((f"record {key} (byte offset {offset})", "cannot decode image"))
                continue
            name = shard_name(index)
            write_shard(os.path.join(out, name), rel, image)
            written.append((name, label))
            nbytes += len(image)
    return written, skipped, nbytes


def rec_to_bin(rec, idx, bin_path, workers=None, progress=True, overwrite=False) -> ConversionReport:
    """MXNet ``train.rec`` + ``train.idx`` → shards + ``label.txt`` (keys ``<label:07d>/<record key>.jpg``).

    Streams the index and the records (constant memory: nothing grows with the dataset except the set
    of identities); header and identity records are skipped.
    """
    start = time.perf_counter()
    rec, idx, bin_path = os.fspath(rec), os.fspath(idx), os.fspath(bin_path)
    if not os.path.isfile(rec):
        raise ToolkitError(f"{rec}: RecordIO file not found")
    total = sum(1 for _ in recordio.iter_image_entries(rec, idx))
    entries = ((i, key, offset) for i, (key, offset) in enumerate(recordio.iter_image_entries(rec, idx)))
    chunks = ((rec, bin_path, list(group)) for group in iter(lambda: list(itertools.islice(entries, CHUNK)), []))
    _prepare_output(bin_path, overwrite)
    os.makedirs(os.path.join(bin_path, "images"), exist_ok=True)
    report, identities = ConversionReport(), set()
    with atomic_write(os.path.join(bin_path, LABEL_FILE), "w") as label_handle:
        for written, skipped, nbytes in _run_chunks(_rec_chunk_task, chunks, _default_workers(workers),
                                                    total, "rec2bin", progress):
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
