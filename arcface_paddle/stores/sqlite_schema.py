"""The SQLite gallery's file: schema, connection settings, metadata and the embedding encoding.

``meta`` holds format, model_id, crop_mode and embedding_size; ``subjects`` the unique names; ``faces`` one row
per face with its embedding as float32 little-endian bytes; ``changes`` a bounded log other processes replay.
"""
from __future__ import annotations

import sqlite3
from typing import Optional

import numpy as np

from arcface_paddle.stores.base import GalleryInfo
from arcface_paddle.stores.checks import check_crop_mode
from arcface_paddle.stores.errors import InvalidValueError

FORMAT = "arcface_paddle.gallery.sqlite"
FORMAT_VERSION = 1
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_S = 60.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subjects (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS faces (
    id TEXT PRIMARY KEY, subject_id INTEGER NOT NULL REFERENCES subjects(id), embedding BLOB NOT NULL,
    model_id TEXT NOT NULL, crop_mode TEXT NOT NULL, source TEXT NOT NULL DEFAULT '', created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS faces_by_subject ON faces(subject_id);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, face_id TEXT, subject_id INTEGER);
"""


def is_sqlite_file(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def connect(path: str) -> sqlite3.Connection:
    """WAL journal (readers never block the writer) and ``synchronous=FULL`` (a commit is on disk when it
    returns); autocommit mode, so every transaction is an explicit BEGIN … COMMIT."""
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


def initialise(db: sqlite3.Connection, info: Optional[GalleryInfo], path: str) -> GalleryInfo:
    """Create the tables if missing (and the metadata from ``info`` in a new file); the gallery's metadata."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        if info is not None:
            rows = [("format", FORMAT), ("format_version", str(FORMAT_VERSION)), ("model_id", info.model_id),
                    ("crop_mode", info.crop_mode), ("embedding_size", str(int(info.embedding_size)))]
            db.executemany("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", rows)
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    if meta.get("format") != FORMAT:
        raise InvalidValueError(f"{path}: not an arcface_paddle gallery (format {meta.get('format')!r})")
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise InvalidValueError(f"{path}: gallery format version {meta.get('format_version')}, this toolkit reads "
                                f"{FORMAT_VERSION}")
    try:
        size = int(meta["embedding_size"])
        return GalleryInfo(meta["model_id"], check_crop_mode(meta["crop_mode"], path), size)
    except (KeyError, ValueError):
        raise InvalidValueError(f"{path}: corrupt gallery metadata {sorted(meta)}") from None


def decode_rows(blobs, embedding_size: int, source: str) -> np.ndarray:
    """Embedding blobs → N×D float32; a blob of the wrong length means a damaged gallery."""
    width = 4 * embedding_size
    if any(len(blob) != width for blob in blobs):
        raise InvalidValueError(f"{source}: corrupt gallery (an embedding is not {width} bytes)")
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(-1, embedding_size).astype(np.float32)


def encode_row(row: np.ndarray) -> bytes:
    return np.ascontiguousarray(row, dtype="<f4").tobytes()
