"""Gallery stores: the same operations against SQLite, index.bin (where it supports them) and a real milvus-lite.

Search results are checked against an independent brute-force numpy ranking of the faces the test itself
enrolled; persistence by closing and reopening; concurrency with real processes writing one file.
"""
import multiprocessing
import os
import sqlite3
import uuid

import numpy as np
import pytest

from arcface_paddle.core.embeddings import l2_normalize
from arcface_paddle.stores import (
    ConflictError,
    GalleryInfo,
    IncompatibleGalleryError,
    InvalidValueError,
    NewFace,
    NotFoundError,
    UnsupportedOperationError,
    backend_of,
    open_store,
    read_gallery,
)
from arcface_paddle.stores import sqlite as sqlite_store
from arcface_paddle.stores.index_format import GalleryIndex, load_index
from arcface_paddle.stores.uri import _milvus_arguments
from arcface_paddle.stores.vote import UNKNOWN

DIM = 16
INFO = GalleryInfo("model-a", "aligned", DIM)
BACKENDS = ("sqlite", "index.bin", "milvus-lite")


@pytest.fixture(scope="module")
def milvus_file(tmp_path_factory):
    """One milvus-lite database for the module (each test gets its own collection in it)."""
    return str(tmp_path_factory.mktemp("milvus") / "galleries.db")


@pytest.fixture(params=BACKENDS)
def gallery_uri(request, tmp_path, milvus_file):
    if request.param == "sqlite":
        return str(tmp_path / "gallery.db")
    if request.param == "index.bin":
        return str(tmp_path / "index.bin")
    return f"milvus-lite:{milvus_file}?collection=g_{uuid.uuid4().hex[:12]}"


def unit_rows(count, seed):
    rows = np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def brute_force(faces: dict, query: np.ndarray, k: int):
    """Independent reference: (similarity, subject) of every enrolled face, best first."""
    scored = sorted(((float(row @ query), subject) for subject, row in faces.values()), key=lambda x: -x[0])
    return scored[:k]


def test_operations_agree_with_a_brute_force_reference(gallery_uri):
    store = open_store(gallery_uri, INFO)
    ids = store.supports_face_ids
    rows = unit_rows(12, seed=1)
    faces = {}                                   # face key → (subject, row): the reference model
    for i, subject in enumerate(["ada"] * 4 + ["grace"] * 4 + ["katherine"] * 4):
        faces[f"f{i}"] = (subject, rows[i])
    for subject in ("ada", "grace", "katherine"):
        keys = [key for key, (name, _) in faces.items() if name == subject]
        records = store.add_faces(subject, np.stack([faces[key][1] for key in keys]),
                                  face_ids=keys if ids else None, sources=[f"{key}.jpg" for key in keys])
        assert [record.added for record in records] == [True] * 4
    assert len(store) == 12
    assert [(s.name, s.faces) for s in store.subjects()] == [("ada", 4), ("grace", 4), ("katherine", 4)]

    queries = unit_rows(6, seed=2) + 0.0
    queries[:3] = rows[[0, 5, 10]] + 0.05 * unit_rows(3, seed=3)      # near known faces
    for query in queries / np.linalg.norm(queries, axis=1, keepdims=True):
        (similarities, names), = store.search(query[None], 5)
        expected = brute_force(faces, query, 5)
        np.testing.assert_allclose(similarities, [s for s, _ in expected], atol=1e-5)
        assert sorted(names) == sorted(name for _, name in expected)
    matches = store.match(rows[[0, 5]], threshold=0.9, top_k=1)
    assert [m.name for m in matches] == ["ada", "grace"]
    assert store.match(-rows[[0]], threshold=0.9, top_k=3)[0].name == UNKNOWN

    assert store.rename_subject("katherine", "Katherine Johnson") == 4
    faces = {key: ("Katherine Johnson" if name == "katherine" else name, row) for key, (name, row) in faces.items()}
    with pytest.raises(ConflictError, match="already exists"):
        store.rename_subject("ada", "grace")
    with pytest.raises(NotFoundError):
        store.rename_subject("nobody", "somebody")
    assert store.delete_subject("grace") == 4
    faces = {key: value for key, value in faces.items() if value[0] != "grace"}
    with pytest.raises(NotFoundError, match="'grace' not found"):
        store.subject_faces("grace")
    if ids:
        deleted = store.delete_face("f1")
        assert (deleted.subject, deleted.source) == ("ada", "f1.jpg")
        del faces["f1"]
        with pytest.raises(NotFoundError):
            store.delete_face("f1")
        assert [f.face_id for f in store.subject_faces("ada")] == ["f0", "f2", "f3"]
    else:
        with pytest.raises(UnsupportedOperationError, match="no face ids"):
            store.delete_face("f1")
    for query in unit_rows(4, seed=4):
        (similarities, names), = store.search(query[None], 3)
        expected = brute_force(faces, query, 3)
        np.testing.assert_allclose(similarities, [s for s, _ in expected], atol=1e-5)

    # Reopened (a new process would see the same): everything that returned is there.
    expected_subjects = [(s.name, s.faces) for s in store.subjects()]
    store.close()
    reopened = open_store(gallery_uri, INFO, create=False)
    assert [(s.name, s.faces) for s in reopened.subjects()] == expected_subjects
    assert len(reopened) == len(faces)
    exported = reopened.export_index()
    assert sorted(exported.names) == sorted(name for name, _ in faces.values())
    assert exported.model_id == INFO.model_id and exported.crop_mode == INFO.crop_mode
    reopened.close()


def test_client_face_ids_make_adds_idempotent(gallery_uri):
    store = open_store(gallery_uri, INFO)
    rows = unit_rows(3, seed=5)
    if not store.supports_face_ids:
        with pytest.raises(UnsupportedOperationError):
            store.add_faces("ada", rows[:1], face_ids=["x1"])
        return
    first = store.add_faces("ada", rows[:2], face_ids=["x1", "x2"])
    again = store.add_faces("ada", rows[:2], face_ids=["x1", "x2"])          # a retried request
    assert [r.added for r in first] == [True, True] and [r.added for r in again] == [False, False]
    assert len(store) == 2
    with pytest.raises(ConflictError, match="'x1' already belongs to subject 'ada'"):
        store.add_faces("grace", rows[2:3], face_ids=["x1"])
    with pytest.raises(ConflictError, match="given twice"):
        store.add([NewFace("ada", rows[0], "x9"), NewFace("grace", rows[1], "x9")])
    assert len(store) == 2
    store.close()


def test_bad_values_are_refused_before_anything_is_written(gallery_uri):
    store = open_store(gallery_uri, INFO)
    good = unit_rows(1, seed=6)
    bad_rows = [(np.full((1, DIM), np.nan), "NaN"), (np.zeros((1, DIM)), "all-zero"),
                (unit_rows(1, 7)[:, :8], "8\\)")]
    for rows, message in bad_rows:
        with pytest.raises((InvalidValueError, IncompatibleGalleryError), match=message):
            store.add_faces("ada", rows)
    for name, message in (("", "empty"), ("unknown", "unrecognised face"), ("a\nb", "control"),
                          ("x" * 201, "at most 200")):
        with pytest.raises(InvalidValueError, match=message):
            store.add_faces(name, good)
    if store.supports_face_ids:
        with pytest.raises(InvalidValueError, match="face id"):
            store.add_faces("ada", good, face_ids=["../etc/passwd"])
    assert len(store) == 0
    rows = unit_rows(2, seed=8) * 7.0                       # any length in: stored unit length
    store.add_faces("ada", rows)
    np.testing.assert_allclose(np.linalg.norm(store.export_index().features, axis=1), 1.0, atol=1e-5)
    store.close()


def test_another_recognizer_size_or_crop_is_refused_by_every_backend(gallery_uri):
    store = open_store(gallery_uri, INFO)
    store.add_faces("ada", unit_rows(2, seed=9))
    store.close()
    with pytest.raises(IncompatibleGalleryError, match="model_id model-a.*model-b"):
        open_store(gallery_uri, GalleryInfo("model-b", "aligned", DIM))
    with pytest.raises(IncompatibleGalleryError, match="16-d"):
        open_store(gallery_uri, GalleryInfo("model-a", "aligned", 32))
    store = open_store(gallery_uri, INFO)
    with pytest.raises(IncompatibleGalleryError, match="holds 'aligned' face crops, but these are 'box'"):
        store.check_compatible("model-a", DIM, crop_mode="box")
    foreign = GalleryIndex(["x"], unit_rows(1, 10), model_id="model-b")
    with pytest.raises(IncompatibleGalleryError, match="model-b"):
        store.import_index(foreign)
    assert len(store) == 2
    store.close()


def test_export_import_round_trip_between_backends(gallery_uri, tmp_path):
    # unit rows whose last bits normalising again, and again, would change: a store must keep them as given
    def moves(row):
        return not np.array_equal(l2_normalize(row[None])[0], row)
    candidates = unit_rows(3000, seed=11)
    rows = np.stack([row for row in candidates if moves(row) and moves(l2_normalize(row[None])[0])][:6])
    assert len(rows) == 6
    source = GalleryIndex(["ada", "ada", "grace", "奥巴马", "grace", "ada"], rows, model_id="model-a")
    store = open_store(gallery_uri, INFO)
    assert store.import_index(source) == 6
    exported = store.export_index()
    if store.supports_face_ids:
        assert store.import_index(source) == 0                # importing the same file again adds nothing
        assert store.import_index(exported) == 0              # nor does importing what it exported
    assert sorted(exported.names) == sorted(source.names)
    order = np.lexsort((exported.features[:, 0], exported.names))
    reference = np.lexsort((source.features[:, 0], source.names))
    np.testing.assert_allclose(exported.features[order], source.features[reference], atol=1e-6)
    exported.save(str(tmp_path / "copy.bin"))
    assert sorted(load_index(str(tmp_path / "copy.bin")).names) == sorted(source.names)
    store.close()
    assert sorted(read_gallery(gallery_uri).names) == sorted(source.names)


def test_backend_is_chosen_by_path_or_uri(tmp_path):
    assert backend_of(str(tmp_path / "gallery.db")) == "sqlite"
    assert backend_of(str(tmp_path / "x.sqlite3")) == "sqlite"
    assert backend_of(str(tmp_path / "index.bin")) == "index.bin"
    assert backend_of("milvus://db.example:19530/faces") == "milvus"
    assert backend_of("milvus-lite:data/g.db") == "milvus"
    renamed = tmp_path / "gallery.data"                     # an existing file is recognised by its header
    open_store(str(tmp_path / "real.db"), INFO).close()
    os.rename(tmp_path / "real.db", renamed)
    assert backend_of(str(renamed)) == "sqlite"
    with pytest.raises(Exception, match="cannot tell the gallery backend"):
        backend_of(str(tmp_path / "gallery.txt"))
    remote = _milvus_arguments("milvus://alice:s3cret@db.example:19530/faces?index=hnsw")
    assert remote["uri"] == "http://db.example:19530" and remote["collection"] == "faces"
    assert remote["token"] == "alice:s3cret" and "s3cret" not in remote["display"] and remote["index_type"] == "HNSW"
    with pytest.raises(Exception, match="collection name"):
        _milvus_arguments("milvus://db.example:19530/bad-name")
    not_sqlite = tmp_path / "fake.db"
    not_sqlite.write_bytes(b"hello, not a database at all")
    with pytest.raises(InvalidValueError, match="not a SQLite database"):
        open_store(str(not_sqlite), INFO)


# ---- SQLite: several processes, one file --------------------------------------------------------------------
def _writer(path: str, worker: int, count: int) -> None:
    store = open_store(path, INFO)
    rows = unit_rows(count, seed=100 + worker)
    for i in range(count):
        store.add_faces(f"worker{worker}", rows[i:i + 1], face_ids=[f"w{worker}-{i}"])
    store.close()


def _appender(path: str, worker: int) -> None:
    store = open_store(path, INFO)
    for i in range(5):
        store.add_faces(f"worker{worker}-{i}", unit_rows(1, seed=200 + 10 * worker + i))
    store.close()


@pytest.mark.parametrize("name", ["gallery.db", "index.bin"])
def test_concurrent_writer_processes_lose_nothing(tmp_path, name):
    path = str(tmp_path / name)
    context = multiprocessing.get_context("spawn")
    if name == "gallery.db":
        workers = [context.Process(target=_writer, args=(path, w, 15)) for w in range(3)]
    else:
        workers = [context.Process(target=_appender, args=(path, w)) for w in range(3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0
    store = open_store(path, INFO, create=False)
    assert len(store) == 45 if name == "gallery.db" else len(store) == 15
    if name == "gallery.db":
        assert {f.face_id for f in store.subject_faces("worker1")} == {f"w1-{i}" for i in range(15)}
    store.close()


def test_sqlite_search_follows_other_connections_changes(tmp_path, monkeypatch):
    path = str(tmp_path / "gallery.db")
    reader, writer = open_store(path, INFO), open_store(path, INFO)
    rows = unit_rows(4, seed=12)
    writer.add_faces("ada", rows[:2], face_ids=["a1", "a2"])
    assert reader.match(rows[:1], 0.9, 1)[0].name == "ada" and len(reader) == 2
    writer.rename_subject("ada", "Ada Lovelace")
    writer.delete_face("a2")
    assert reader.match(rows[:1], 0.9, 1)[0].name == "Ada Lovelace" and len(reader) == 1
    # The change log is bounded: a reader left behind by more changes than it keeps reloads in full.
    monkeypatch.setattr(sqlite_store, "CHANGES_KEPT", 2)
    for i in range(5):
        writer.add_faces(f"p{i}", rows[2:3] * 0 + unit_rows(1, seed=300 + i), face_ids=[f"p{i}"])
    assert len(reader) == 6 and sorted(reader.identities) == sorted(["Ada Lovelace"] + [f"p{i}" for i in range(5)])
    reader.add_faces("grace", rows[3:4], face_ids=["g1"])       # the reader writes too: both see everything
    assert len(writer) == 7 and writer.match(rows[3:4], 0.9, 1)[0].name == "grace"
    reader.close(), writer.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_rows_from_another_recognizer_or_damaged_are_refused(tmp_path):
    path = str(tmp_path / "gallery.db")
    store = open_store(path, INFO)
    store.add_faces("ada", unit_rows(2, seed=13), face_ids=["a1", "a2"])
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE faces SET model_id = 'model-z' WHERE id = 'a1'")
    with pytest.raises(IncompatibleGalleryError, match="1 faces were embedded by another recognizer"):
        open_store(path, INFO)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE faces SET model_id = 'model-a', embedding = ? WHERE id = 'a1'",
                   (np.full(DIM, 3.0, "<f4").tobytes(),))
    with pytest.raises(InvalidValueError, match="not unit length"):
        open_store(path, INFO)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE faces SET embedding = ? WHERE id = 'a1'", (b"short",))
    with pytest.raises(InvalidValueError, match="corrupt gallery"):
        open_store(path, INFO)


def test_building_a_new_database_refuses_to_wipe_an_existing_one(tmp_path):
    path = str(tmp_path / "gallery.db")
    store = open_store(path, INFO)
    store.add_faces("ada", unit_rows(1, seed=14))
    store.close()
    with pytest.raises(ConflictError, match="already holds 1 faces"):
        open_store(path, INFO, replace=True)
    assert len(open_store(path, INFO)) == 1
