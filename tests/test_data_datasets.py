"""Datasets (shards, image folders, synthetic), DataLoader with workers, verification .bin files."""
import pickle

import cv2
import numpy as np
import paddle
import pytest

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import decode_image, normalize_rgb_uint8
from arcface_paddle.core.samplers import GlobalBatchSampler
from arcface_paddle.data.datasets import ImageFolderDataset, ShardDataset, SyntheticDataset
from arcface_paddle.data.synthetic import write_synthetic_shards, write_synthetic_tree
from arcface_paddle.data.verification_bin import load_verification_bin, pairs_from_tree, save_verification_bin
from arcface_paddle.preprocessing import TRAIN_MEAN, TRAIN_STD
from arcface_paddle.synthetic.faces import SyntheticFaces


@pytest.fixture(scope="module")
def synthetic_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    faces = SyntheticFaces(4, 4, seed=7)
    write_synthetic_tree(faces, root / "tree")
    write_synthetic_shards(faces, root / "shards")
    return root


def test_shard_dataset_shapes_dtypes_normalisation(synthetic_data):
    ds = ShardDataset(synthetic_data / "shards", train=False)
    assert len(ds) == 16 and ds.num_classes == 4
    image, label = ds[5]
    assert image.shape == (3, 112, 112) and image.dtype == np.float32
    assert label.dtype == np.int64 and int(label) == 1
    raw = decode_image((synthetic_data / "tree" / "000001" / "0001.jpg").read_bytes(), "x")
    np.testing.assert_array_equal(image, (raw.transpose(2, 0, 1).astype(np.float32) - 127.5) / 127.5)
    assert image.min() >= -1.0 and image.max() <= 1.0


def test_train_mode_flips_horizontally_sometimes(synthetic_data):
    ds = ShardDataset(synthetic_data / "shards", train=True)
    plain = ShardDataset(synthetic_data / "shards", train=False)[3][0]
    np.random.seed(0)
    draws = [ds[3][0] for _ in range(20)]
    flipped = sum(np.array_equal(d, plain[:, :, ::-1]) for d in draws)
    same = sum(np.array_equal(d, plain) for d in draws)
    assert flipped + same == 20 and 3 <= flipped <= 17


def test_image_folder_dataset_tree_and_label_file(synthetic_data, faces_dir, tmp_path):
    tree = ImageFolderDataset(synthetic_data / "tree", train=False)
    shards = ShardDataset(synthetic_data / "shards", train=False)
    assert tree.num_classes == 4 and len(tree) == 16
    np.testing.assert_array_equal(tree[9][0], shards[9][0])
    assert int(tree[9][1]) == int(shards[9][1]) == 2
    labels = tmp_path / "labels.txt"
    labels.write_text("obama.jpg\t0\nbiden.jpg\t1\nastronaut.png\t2\n")
    real = ImageFolderDataset(faces_dir, label_file=str(labels), train=False)
    image, label = real[2]
    assert image.shape == (3, 112, 112) and int(label) == 2 and real.num_classes == 3
    small = cv2.resize(cv2.imread(str(faces_dir / "astronaut.png"))[..., ::-1], (112, 112),
                       interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(image, normalize_rgb_uint8(small, TRAIN_MEAN, TRAIN_STD), atol=1e-6)


def test_corrupt_image_in_dataset_names_the_file(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(ToolkitError, match=r"bad\.jpg: not a readable image"):
        ImageFolderDataset(tmp_path)[0]


def test_synthetic_dataset_matches_generator():
    ds = SyntheticDataset(3, 5, seed=2, train=False)
    image, label = ds[7]
    assert len(ds) == 15 and ds.num_classes == 3 and int(label) == 1
    np.testing.assert_array_equal(image, normalize_rgb_uint8(SyntheticFaces(3, 5, seed=2).render(1, 2), TRAIN_MEAN, TRAIN_STD))


def test_dataloader_with_workers_and_our_sampler_delivers_the_sampled_images(synthetic_data):
    """The trainer's loading path: our GlobalBatchSampler per rank, two worker processes; every image of the
    epoch arrives exactly once, in the order the sampler chose, intact."""
    ds = ShardDataset(synthetic_data / "shards", train=False)
    seen = []
    for rank in range(2):
        sampler = GlobalBatchSampler(len(ds), 4, rank=rank, world_size=2, seed=5)
        loader = paddle.io.DataLoader(ds, batch_sampler=sampler, num_workers=2)
        for indices, (images, labels) in zip(sampler, loader, strict=True):
            assert images.shape == [4, 3, 112, 112] and images.dtype == paddle.float32
            assert labels.dtype == paddle.int64
            np.testing.assert_array_equal(images.numpy(), np.stack([ds[i][0] for i in indices]))
            assert labels.numpy().reshape(-1).tolist() == ds.labels[indices].tolist()
            seen += indices
    assert sorted(seen) == list(range(len(ds)))              # the two ranks together cover every image once


def test_verification_bin_round_trip_encoded_and_arrays(tmp_path):
    images, issame = SyntheticFaces(2, 2).verification_pairs(range(5, 10), 6)
    save_verification_bin(tmp_path / "png.bin", images, issame, image_format=".png")
    loaded, loaded_same = load_verification_bin(tmp_path / "png.bin")
    np.testing.assert_array_equal(loaded, images)
    np.testing.assert_array_equal(loaded_same, issame)
    save_verification_bin(tmp_path / "arr.bin", images, issame, as_arrays=True)
    loaded, _ = load_verification_bin(tmp_path / "arr.bin", image_size=56)
    assert loaded.shape == (12, 56, 56, 3)
    stored = pickle.loads((tmp_path / "arr.bin").read_bytes())[0]
    assert isinstance(stored[0], np.ndarray)


def test_verification_bin_bad_input(tmp_path):
    class Evil:
        def __reduce__(self):
            return (eval, ("1",))
    (tmp_path / "evil.bin").write_bytes(pickle.dumps(([Evil(), Evil()], [True])))
    with pytest.raises(ToolkitError, match=r"evil\.bin: unsafe or corrupt pickle"):
        load_verification_bin(tmp_path / "evil.bin")
    # (bytes(10**13), [True]): only allowed builtins, but a 10 TB allocation
    bomb = b"\x80\x02cbuiltins\nbytes\n\x8a\x06" + (10 ** 13).to_bytes(6, "little") + b"\x85R]\x88a\x86."
    (tmp_path / "bomb.bin").write_bytes(bomb)
    with pytest.raises(ToolkitError, match=r"bomb\.bin: unsafe or corrupt pickle \(refusing bytes\(<integer>\)"):
        load_verification_bin(tmp_path / "bomb.bin")
    # A numpy array pickle whose empty starting array is given a 2**28-element shape instead of (0,).
    array_bomb = pickle.dumps(([np.zeros(4, np.uint8)] * 2, [True]), 2).replace(b"K\x00\x85", b"J\x00\x00\x00\x10\x85")
    (tmp_path / "array_bomb.bin").write_bytes(array_bomb)
    with pytest.raises(ToolkitError, match=r"array_bomb\.bin: unsafe or corrupt pickle \(refusing numpy _reconstruct"):
        load_verification_bin(tmp_path / "array_bomb.bin")
    (tmp_path / "odd.bin").write_bytes(pickle.dumps(([b"x"] * 3, [True])))
    with pytest.raises(ToolkitError, match=r"odd\.bin: 3 images for 1 pairs"):
        load_verification_bin(tmp_path / "odd.bin")
    with pytest.raises(ToolkitError, match="not found"):
        load_verification_bin(tmp_path / "missing.bin")


def test_pairs_from_tree_is_seeded_and_balanced(synthetic_data, repo_root, tmp_path):
    a_images, a_same = pairs_from_tree(synthetic_data / "tree", num_pairs=10, seed=3)
    b_images, b_same = pairs_from_tree(synthetic_data / "tree", num_pairs=10, seed=3)
    assert a_images == b_images and a_same.tolist() == b_same.tolist() == [True, False] * 5
    tree = synthetic_data / "tree"
    by_bytes = {p.read_bytes(): p.parent.name for p in tree.rglob("*.jpg")}
    for k, same in enumerate(a_same):
        assert (by_bytes[a_images[2 * k]] == by_bytes[a_images[2 * k + 1]]) == same


def test_make_verification_bin_cli(synthetic_data, repo_root, tmp_path):
    import subprocess
    import sys
    out = tmp_path / "val.bin"
    cmd = [sys.executable, str(repo_root / "tools" / "make_verification_bin.py"), "--image_path",
           str(synthetic_data / "tree"), "--output", str(out), "--num_pairs", "8", "--seed", "1"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    images, issame = load_verification_bin(out)
    assert images.shape == (16, 112, 112, 3) and issame.sum() == 4
    result = subprocess.run(cmd[:-4] + ["--num_pairs", "5000"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.strip().startswith("error: ") and "distinct balanced pairs" in result.stderr


def test_verification_bin_written_by_python2_loads(tmp_path):
    """InsightFace's lfw.bin was pickled by Python 2: image bytes are py2 ``str`` (BINSTRING opcodes)."""
    images, issame = SyntheticFaces(2, 2).verification_pairs(range(3, 6), 2)
    encoded = [cv2.imencode(".png", im[..., ::-1])[1].tobytes() for im in images]
    body = b"".join(b"T" + len(e).to_bytes(4, "little") + e for e in encoded)
    flags = b"".join(b"\x88" if s else b"\x89" for s in issame)
    (tmp_path / "py2.bin").write_bytes(b"\x80\x02(" + body + b"l(" + flags + b"l\x86.")
    loaded, loaded_same = load_verification_bin(tmp_path / "py2.bin")
    np.testing.assert_array_equal(loaded, images)
    assert loaded_same.tolist() == issame.tolist()
