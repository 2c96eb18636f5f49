"""``gallery.db``: a gallery in SQLite — the embedded default for a gallery that changes.

Tables (:mod:`.sqlite_schema`): ``meta``, ``subjects`` (unique names), ``faces`` (id, subject, embedding,
model_id, crop_mode, source, created) and a bounded ``changes`` log.  WAL journal, ``synchronous=FULL``: a
change that returned is on disk, and a process killed mid-change leaves the database as it was before that
change.  Every change is one
``BEGIN IMMEDIATE`` transaction, so writers in several processes (the service and a ``--append`` build)
queue instead of losing each other's faces.

Search runs over an in-memory :class:`EmbeddingMatrix` kept in step with the tables: this connection's own
changes are applied to it after they commit; other connections' changes are noticed through
``PRAGMA data_version`` and replayed from the ``changes`` log (a full reload only when the log no longer
reaches back far enough).
"""
from __future__ import annotations

import os
import sqlite3
from typing import Optional

import numpy as np

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.stores.base import FaceRecord, GalleryInfo, GalleryStore, SubjectSummary
from arcface_paddle.stores.checks import check_face_id, check_stored_rows, check_subject_name
from arcface_paddle.stores.errors import ConflictError, IncompatibleGalleryError, InvalidValueError, NotFoundError
from arcface_paddle.stores.index_format import GalleryIndex
from arcface_paddle.stores.matrix import EmbeddingMatrix
from arcface_paddle.stores.sqlite_schema import connect, decode_rows, encode_row, initialise, is_sqlite_file

CHANGES_KEPT = 100_000           # log rows kept for other processes to catch up from
FETCH_ROWS = 50_000


class SQLiteStore(GalleryStore):
    backend = "sqlite"

    def __init__(self, path: str, info: Optional[GalleryInfo] = None, create: bool = True):
        path = os.fspath(path)
        exists = os.path.exists(path) and os.path.getsize(path) > 0
        if exists and not is_sqlite_file(path):
            raise InvalidValueError(f"{path}: not a SQLite database")
        if not exists and not create:
            raise NotFoundError(f"{path}: gallery not found")
        if not exists and info is None:
            raise ToolkitError(f"{path}: a new gallery needs the recognizer's model_id, crop mode and size")
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._db = connect(path)
            stored = initialise(self._db, info, path)
        except sqlite3.Error as error:
            self._close_quietly()
            raise ToolkitError(f"{path}: cannot open the gallery database ({error})") from None
        except BaseException:
            self._close_quietly()
            raise
        super().__init__(stored, path)
        self._matrix = EmbeddingMatrix(stored.embedding_size)
        self._names: dict[int, str] = {}
        self._last_seq = 0
        self._data_version = None
        try:
            if info is not None:
                self.check_compatible(info.model_id, info.embedding_size)
            with self._lock:
                self._full_load()
        except BaseException:
            self._db.close()
            raise

    def _close_quietly(self) -> None:
        database = getattr(self, "_db", None)
        if database is not None:
            database.close()

    # ---- schema and loading -------------------------------------------------------------------------------
    def _full_load(self) -> None:
        db = self._db
        own_transaction = not db.in_transaction
        if own_transaction:
            db.execute("BEGIN")
        try:
            foreign = db.execute("SELECT COUNT(*) FROM faces WHERE model_id != ? OR crop_mode != ?",
                                 (self.model_id, self.crop_mode)).fetchone()[0]
            if foreign:
                raise IncompatibleGalleryError(f"{self.source}: {foreign} faces were embedded by another recognizer "
                                               f"or crop mode than the gallery's {self.model_id}/{self.crop_mode}")
            self._names = dict(db.execute("SELECT id, name FROM subjects").fetchall())
            matrix = EmbeddingMatrix(self.embedding_size)
            cursor = db.execute("SELECT id, subject_id, embedding FROM faces ORDER BY rowid")
            while True:
                batch = cursor.fetchmany(FETCH_ROWS)
                if not batch:
                    break
                ids, keys, blobs = zip(*batch)
                matrix.add(list(ids), keys, self._decode_rows(blobs))
            self._last_seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]
            self._data_version = db.execute("PRAGMA data_version").fetchone()[0]
        finally:
            if own_transaction:
                db.execute("COMMIT")
        check_stored_rows(matrix.rows, self.source)
        self._matrix = matrix

    def _decode_rows(self, blobs) -> np.ndarray:
        return decode_rows(blobs, self.embedding_size, self.source)

    # ---- keeping the matrix in step with other connections ------------------------------------------------
    def _catch_up(self) -> None:
        """Apply other connections' committed changes (call under self._lock, inside or outside a transaction)."""
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version:
            return
        oldest = self._db.execute("SELECT MIN(seq) FROM changes").fetchone()[0]
        if oldest is not None and oldest > self._last_seq + 1:      # the log was pruned past us
            self._full_load()
            return
        entries = self._db.execute("SELECT seq, kind, face_id, subject_id FROM changes WHERE seq > ? ORDER BY seq",
                                   (self._last_seq,)).fetchall()
        touched_faces = {face_id for _, kind, face_id, _ in entries if face_id is not None}
        touched_subjects = {subject for _, _, _, subject in entries if subject is not None}
        self._refresh(touched_faces, touched_subjects)
        if entries:
            self._last_seq = entries[-1][0]
        self._data_version = version

    def _refresh(self, face_ids: set, subject_ids: set) -> None:
        """Make the matrix rows of ``face_ids`` and the names of ``subject_ids`` equal to the tables."""
        for subject_id in subject_ids:
            row = self._db.execute("SELECT name FROM subjects WHERE id = ?", (subject_id,)).fetchone()
            if row is None:
                self._names.pop(subject_id, None)
            else:
                self._names[subject_id] = row[0]
        face_ids = list(face_ids)
        for face_id in face_ids:
            self._matrix.remove(face_id)
        for start in range(0, len(face_ids), 500):
            chunk = face_ids[start:start + 500]
            rows = self._db.execute(f"SELECT id, subject_id, embedding FROM faces WHERE id IN "
                                    f"({','.join('?' * len(chunk))})", chunk).fetchall()
            if rows:
                ids, keys, blobs = zip(*rows)
                embeddings = self._decode_rows(blobs)
                check_stored_rows(embeddings, self.source)
                self._matrix.add(list(ids), keys, embeddings)
                for key in keys:
                    if key not in self._names:
                        self._names[key] = self._db.execute("SELECT name FROM subjects WHERE id = ?",
                                                            (key,)).fetchone()[0]

    def _write(self, work):
        """Run ``work()`` (SQL statements that return (log entries, apply-to-matrix callback)) in one
        BEGIN IMMEDIATE transaction; log, commit, then update the matrix."""
        db = self._db
        with self._lock:
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise ToolkitError(f"{self.source}: gallery is busy ({error})") from None
            try:
                self._catch_up()
                result, log, apply = work()
                if log:
                    db.executemany("INSERT INTO changes (kind, face_id, subject_id) VALUES (?, ?, ?)", log)
                    last = db.execute("SELECT MAX(seq) FROM changes").fetchone()[0]
                    db.execute("DELETE FROM changes WHERE seq <= ?", (last - CHANGES_KEPT,))
                db.execute("COMMIT")
            except sqlite3.IntegrityError as error:
                db.execute("ROLLBACK")
                raise ConflictError(f"{self.source}: {error}") from None
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            if log:
                self._last_seq = last
            apply()
            return result

    def _subject_id(self, name: str) -> Optional[int]:
        row = self._db.execute("SELECT id FROM subjects WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    # ---- changes ------------------------------------------------------------------------------------------
    def _add(self, prepared):
        db = self._db

        def work():
            records, new_ids, new_keys, new_rows, log = [], [], [], [], []
            subject_ids = {}
            for face_id, subject, row, source, created in prepared:
                found = db.execute("SELECT s.name, f.source, f.created FROM faces f JOIN subjects s "
                                   "ON s.id = f.subject_id WHERE f.id = ?", (face_id,)).fetchone()
                if found is not None:
                    if found[0] != subject:
                        raise ConflictError(f"face id {face_id!r} already belongs to subject {found[0]!r}")
                    records.append(FaceRecord(face_id, subject, found[1], found[2], added=False))
                    continue
                if subject not in subject_ids:
                    subject_ids[subject] = self._subject_id(subject)
                    if subject_ids[subject] is None:
                        subject_ids[subject] = db.execute("INSERT INTO subjects (name, created) VALUES (?, ?)",
                                                          (subject, created)).lastrowid
                key = subject_ids[subject]
                db.execute("INSERT INTO faces (id, subject_id, embedding, model_id, crop_mode, source, created) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)", (face_id, key, encode_row(row), self.model_id,
                                                            self.crop_mode, source, created))
                records.append(FaceRecord(face_id, subject, source, created))
                new_ids.append(face_id), new_keys.append(key), new_rows.append(row)
                log.append(("add", face_id, key))

            def apply():
                self._names.update({key: name for name, key in subject_ids.items()})
                if new_ids:
                    self._matrix.add(new_ids, new_keys, np.stack(new_rows))
            return records, log, apply
        return self._write(work)

    def delete_face(self, face_id: str) -> FaceRecord:
        face_id = check_face_id(face_id)
        db = self._db

        def work():
            found = db.execute("SELECT f.subject_id, s.name, f.source, f.created FROM faces f JOIN subjects s "
                               "ON s.id = f.subject_id WHERE f.id = ?", (face_id,)).fetchone()
            if found is None:
                raise NotFoundError(f"face {face_id!r} not found")
            key = found[0]
            db.execute("DELETE FROM faces WHERE id = ?", (face_id,))
            if not db.execute("SELECT 1 FROM faces WHERE subject_id = ? LIMIT 1", (key,)).fetchone():
                db.execute("DELETE FROM subjects WHERE id = ?", (key,))
            return FaceRecord(face_id, found[1], found[2], found[3]), [("delete", face_id, key)], \
                lambda: self._matrix.remove(face_id)
        return self._write(work)

    def delete_subject(self, name: str) -> int:
        name = check_subject_name(name)
        db = self._db

        def work():
            key = self._subject_id(name)
            if key is None:
                raise NotFoundError(f"subject {name!r} not found")
            face_ids = [row[0] for row in db.execute("SELECT id FROM faces WHERE subject_id = ?", (key,))]
            db.execute("DELETE FROM faces WHERE subject_id = ?", (key,))
            db.execute("DELETE FROM subjects WHERE id = ?", (key,))

            def apply():
                for face_id in face_ids:
                    self._matrix.remove(face_id)
                self._names.pop(key, None)
            return len(face_ids), [("delete", face_id, key) for face_id in face_ids], apply
        return self._write(work)

    def rename_subject(self, old: str, new: str) -> int:
        old, new = check_subject_name(old), check_subject_name(new)
        db = self._db

        def work():
            key = self._subject_id(old)
            if key is None:
                raise NotFoundError(f"subject {old!r} not found")
            count = db.execute("SELECT COUNT(*) FROM faces WHERE subject_id = ?", (key,)).fetchone()[0]
            if old == new:
                return count, [], lambda: None
            if self._subject_id(new) is not None:
                raise ConflictError(f"subject {new!r} already exists; delete or rename it first")
            db.execute("UPDATE subjects SET name = ? WHERE id = ?", (new, key))
            return count, [("rename", None, key)], lambda: self._names.__setitem__(key, new)
        return self._write(work)

    # ---- reading ------------------------------------------------------------------------------------------
    def subjects(self) -> list[SubjectSummary]:
        with self._lock:
            rows = self._db.execute("SELECT s.name, COUNT(f.id) FROM subjects s JOIN faces f ON f.subject_id = s.id "
                                    "GROUP BY s.id ORDER BY s.name").fetchall()
        return [SubjectSummary(name, count) for name, count in rows]

    def subject_faces(self, name: str) -> list[FaceRecord]:
        name = check_subject_name(name)
        with self._lock:
            rows = self._db.execute("SELECT f.id, f.source, f.created FROM faces f JOIN subjects s ON "
                                    "s.id = f.subject_id WHERE s.name = ? ORDER BY f.created, f.rowid",
                                    (name,)).fetchall()
        if not rows:
            raise NotFoundError(f"subject {name!r} not found")
        return [FaceRecord(face_id, name, source, created) for face_id, source, created in rows]

    def __len__(self) -> int:
        with self._lock:
            self._catch_up()
            return len(self._matrix)

    def search(self, queries, top_k, backend="numpy"):
        with self._lock:
            self._catch_up()
            if not len(self._matrix):
                return [(np.zeros(0, np.float32), []) for _ in range(len(queries))]
            similarities, rows = self._matrix.top_k(queries, top_k, backend)
            keys = self._matrix.keys
            return [(sims, [self._names[int(keys[row])] for row in row_ids])
                    for sims, row_ids in zip(similarities, rows)]

    def export_index(self) -> GalleryIndex:
        """Every face in the order it was added."""
        with self._lock:
            rows = self._db.execute("SELECT s.name, f.embedding FROM faces f JOIN subjects s ON s.id = f.subject_id "
                                    "ORDER BY f.rowid").fetchall()
        names = [name for name, _ in rows]
        features = self._decode_rows([blob for _, blob in rows]) if rows else np.zeros((0, self.embedding_size),
                                                                                      np.float32)
        return GalleryIndex(names, features, self.model_id, source=self.source, normalize=False,
                            crop_mode=self.crop_mode)

    def close(self) -> None:
        with self._lock:
            self._db.close()
