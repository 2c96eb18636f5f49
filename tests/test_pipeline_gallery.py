"""index.bin: pickle-free round trip, refusal of other models and damaged files, safe import, exact search, voting."""
import os
import pickle
import zipfile

import numpy as np
import pytest

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.stores.index_format import GalleryIndex, import_reference_index, load_index
from arcface_paddle.stores.search import faiss_available
from arcface_paddle.stores.vote import UNKNOWN, match_embeddings, vote


@pytest.fixture()
def small_index():
    rng = np.random.default_rng(1)
    names = ["obama", "obama", "biden", "奥巴马", "hopper"]
    return GalleryIndex(names, rng.standard_normal((5, 16)).astype(np.float32), model_id="abc123")


def test_round_trip_without_pickle(tmp_path, small_index):
    path = tmp_path / "index.bin"
    small_index.save(str(path))
    with np.load(path, allow_pickle=False) as archive:        # readable by plain numpy, no pickle inside
        assert archive["features"].dtype == np.float32
    loaded = load_index(str(path), expected_model_id="abc123")
    assert loaded.names == small_index.names
    assert loaded.model_id == "abc123" and loaded.embedding_size == 16 and loaded.crop_mode == "aligned"
    np.testing.assert_allclose(np.linalg.norm(loaded.features, axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(loaded.features, small_index.features)
    assert not [name for name in os.listdir(tmp_path) if name != "index.bin"]   # no temp file left


def test_index_written_before_crop_mode_existed_reads_as_aligned(tmp_path, small_index):
    path = tmp_path / "old.bin"
    np.savez(open(path, "wb"), magic=np.array("arcface_paddle.gallery"), format_version=np.array(1, np.int64),
             names=np.asarray(small_index.names), features=small_index.features,
             embedding_size=np.array(16, np.int64), model_id=np.array("abc123"))
    assert load_index(str(path)).crop_mode == "aligned"
    with pytest.raises(ToolkitError, match="unknown crop_mode 'tilted'"):
        GalleryIndex(["a"], np.ones((1, 4)), model_id="m", crop_mode="tilted")


def test_other_model_is_refused_naming_both_ids(tmp_path, small_index):
    path = tmp_path / "index.bin"
    small_index.save(str(path))
    with pytest.raises(ToolkitError, match="abc123.*ffff0000"):
        load_index(str(path), expected_model_id="ffff0000", model_dir="models/other")


def test_corrupt_truncated_and_foreign_files(tmp_path, small_index):
    good = tmp_path / "good.bin"
    small_index.save(str(good))
    data = good.read_bytes()
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    for path, detail in ((truncated, "BadZipFile"), (garbage, "not a NumPy .npz archive"), (empty, "empty file")):
        with pytest.raises(ToolkitError, match=f"{path.name}: corrupt or truncated index \\({detail}"):
            load_index(str(path))
    foreign = tmp_path / "foreign.bin"
    np.savez(open(foreign, "wb"), weights=np.zeros(3))
    with pytest.raises(ToolkitError, match="not an arcface_paddle gallery"):
        load_index(str(foreign))
    with pytest.raises(ToolkitError, match="not found"):
        load_index(str(tmp_path / "missing.bin"))
    nan_index = GalleryIndex(["a", "b"], np.ones((2, 4)), model_id="m")
    nan_index.features[1, 2] = np.nan
    nan_index.save(str(tmp_path / "nan.bin"))
    with pytest.raises(ToolkitError, match="non-finite"):
        load_index(str(tmp_path / "nan.bin"))
    # A damaged member (bit flips inside the features) is caught by the zip CRC.
    flipped = bytearray(data)
    with zipfile.ZipFile(good) as archive:
        info = archive.getinfo("features.npy")
    start = info.header_offset + 30 + len(info.filename) + 200
    flipped[start:start + 8] = b"\xff" * 8
    (tmp_path / "flipped.bin").write_bytes(bytes(flipped))
    with pytest.raises(ToolkitError, match="flipped.bin"):
        load_index(str(tmp_path / "flipped.bin"))


def test_reference_pickle_import_is_restricted(tmp_path):
    features = np.arange(12, dtype=np.float32).reshape(3, 4) + 1
    reference = tmp_path / "reference_index.bin"
    reference.write_bytes(pickle.dumps({"label": ["a", "b", "a"], "feature": features}))
    with pytest.raises(ToolkitError, match="--import_index"):
        load_index(str(reference))               # never unpickled implicitly
    imported = import_reference_index(str(reference), model_id="m1")
    assert imported.names == ["a", "b", "a"] and imported.model_id == "m1"
    np.testing.assert_allclose(imported.features, features / np.linalg.norm(features, axis=1, keepdims=True),
                               rtol=1e-6)

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    malicious = tmp_path / "malicious.bin"
    malicious.write_bytes(pickle.dumps({"label": ["x"], "feature": Exploit()}))
    with pytest.raises(ToolkitError, match="unsafe"):
        import_reference_index(str(malicious), model_id="m1")
    assert not marker.exists()
    wrong = tmp_path / "wrong.bin"
    wrong.write_bytes(pickle.dumps({"names": ["x"]}))
    with pytest.raises(ToolkitError, match="'label' and 'feature'"):
        import_reference_index(str(wrong), model_id="m1")


def test_chunked_search_matches_brute_force():
    rng = np.random.default_rng(7)
    gallery = GalleryIndex([str(i) for i in range(1000)], rng.standard_normal((1000, 32)), model_id="m")
    queries = rng.standard_normal((9, 32)).astype(np.float32)
    similarities, rows = gallery.search(queries, top_k=5, chunk_rows=77)
    brute = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ gallery.features.T
    np.testing.assert_array_equal(rows, np.argsort(-brute, axis=1)[:, :5])
    np.testing.assert_allclose(similarities, np.sort(brute, axis=1)[:, ::-1][:, :5], atol=1e-5)
    capped, _ = gallery.search(queries[:1], top_k=50000)
    assert capped.shape == (1, 1000)
    with pytest.raises(ToolkitError, match="empty"):
        GalleryIndex.empty(32, "m").search(queries)


def test_faiss_backend_agrees_with_exact_search(small_index):
    pytest.importorskip("faiss", reason="faiss-cpu is in the test extras")
    rng = np.random.default_rng(3)
    gallery = GalleryIndex([f"p{i}" for i in range(500)], rng.standard_normal((500, 16)), model_id="m")
    queries = gallery.features[[2, 77, 400]] + 0.05 * rng.standard_normal((3, 16)).astype(np.float32)
    exact_scores, exact_rows = gallery.search(queries, 5)
    faiss_scores, faiss_rows = gallery.search(queries, 5, backend="faiss")
    np.testing.assert_array_equal(faiss_rows, exact_rows)
    np.testing.assert_allclose(faiss_scores, exact_scores, atol=1e-5)
    assert list(faiss_rows[:, 0]) == [2, 77, 400]


def test_faiss_backend_without_faiss_names_the_extra(small_index, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    assert not faiss_available()
    with pytest.raises(ToolkitError, match="pip install faiss-cpu"):
        small_index.search(small_index.features[:1], 3, backend="faiss")


def test_append_keeps_old_rows(tmp_path, small_index):
    small_index.add(["new"], np.ones((1, 16)))
    assert len(small_index) == 6 and small_index.names[-1] == "new"
    with pytest.raises(ToolkitError, match="16-d"):
        small_index.add(["bad"], np.ones((1, 8)))


def test_vote_threshold_and_majority():
    assert vote([0.9, 0.5, 0.48], ["a", "b", "b"], threshold=0.4) == vote([0.5, 0.48], ["b", "b"], 0.4)
    assert vote([0.9, 0.5, 0.48], ["a", "b", "b"], threshold=0.4).name == "b"
    assert vote([0.9, 0.5, 0.48], ["a", "b", "b"], threshold=0.6).name == "a"
    tie = vote([0.7, 0.8], ["a", "b"], threshold=0.5)
    assert tie.name == "b" and tie.similarity == pytest.approx(0.8)
    unknown = vote([0.3, 0.2], ["a", "b"], threshold=0.5)
    assert unknown.name == UNKNOWN and unknown.similarity == pytest.approx(0.3)


def test_match_embeddings_names_each_query(small_index):
    matches = match_embeddings(small_index, small_index.features[[2, 4]], threshold=0.9, top_k=1)
    assert [m.name for m in matches] == ["biden", "hopper"]
    far = -small_index.features[[2]]
    assert match_embeddings(small_index, far, threshold=0.9)[0].name == UNKNOWN
