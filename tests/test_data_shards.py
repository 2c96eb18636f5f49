"""Shard format, image2bin / bin2image / label modes, and hostile input (crafted pickles, unsafe keys)."""
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys

import pytest

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.data import convert
from arcface_paddle.data.label_file import read_classes, read_label_file
from arcface_paddle.data.shard_format import decode_record, encode_record, read_shard, write_shard
from arcface_paddle.data.synthetic import write_synthetic_tree
from arcface_paddle.synthetic.faces import SyntheticFaces


def _files(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = open(path, "rb").read()
    return out


@pytest.fixture(scope="module")
def synthetic_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    write_synthetic_tree(SyntheticFaces(4, 3, seed=1), root)
    return root


def test_record_layout_matches_reference():
    record = encode_record("people0/1.jpg", b"\xff\xd8jpegdata")
    key_len = struct.unpack("<I", record[:4])[0]
    assert record[4:4 + key_len] == b"people0/1.jpg"
    value_len = struct.unpack("<I", record[4 + key_len:8 + key_len])[0]
    assert pickle.loads(record[8 + key_len:]) == b"\xff\xd8jpegdata"
    assert len(record) == 8 + key_len + value_len
    assert decode_record(record, "x") == ("people0/1.jpg", b"\xff\xd8jpegdata")


def test_identity_tree_round_trip_is_byte_exact(synthetic_tree, tmp_path):
    report = convert.image_to_bin(synthetic_tree, tmp_path / "bin", workers=2, progress=False)
    assert (report.images, report.identities, report.skipped) == (12, 4, [])
    entries = read_label_file(tmp_path / "bin" / "label.txt")
    assert entries[0] == ("images/00000000.bin", 0) and entries[-1] == ("images/00000011.bin", 3)
    assert read_classes(tmp_path / "bin" / "classes.txt") == ["000000", "000001", "000002", "000003"]
    convert.bin_to_image(tmp_path / "bin", tmp_path / "back", workers=1, progress=False)
    restored = _files(tmp_path / "back")
    original = _files(synthetic_tree)
    assert {k: v for k, v in restored.items() if k.endswith(".jpg")} == original
    labels = dict(read_label_file(tmp_path / "back" / "label.txt"))
    assert labels["000002/0001.jpg"] == 2


def test_real_photos_round_trip_with_label_file_and_corrupt_image(faces_dir, tmp_path):
    flat = tmp_path / "flat"
    shutil.copytree(faces_dir, flat)
    (flat / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    names = sorted(os.listdir(faces_dir))
    label_file = tmp_path / "labels.txt"
    label_file.write_text("".join(f"{n}\t{i}\n" for i, n in enumerate(names)) + "broken.jpg\t9\n")
    report = convert.image_to_bin(flat, tmp_path / "bin", label_file=label_file, workers=2, progress=False)
    assert report.images == len(names)
    assert report.skipped == [("broken.jpg", "not a readable image (corrupt or unsupported format)")]
    stored_keys = [read_shard(tmp_path / "bin" / rel)[0] for rel, _ in read_label_file(tmp_path / "bin" / "label.txt")]
    assert "broken.jpg" not in stored_keys
    convert.bin_to_image(tmp_path / "bin", tmp_path / "back", workers=2, progress=False)
    for name in names:
        assert (tmp_path / "back" / name).read_bytes() == (faces_dir / name).read_bytes()


def test_label_mode_writes_labels_for_raw_tree(synthetic_tree, tmp_path):
    out = tmp_path / "label.txt"
    report = convert.write_tree_labels(synthetic_tree, label_file=str(out))
    entries = read_label_file(out)
    assert report.images == 12 and entries[3] == ("000001/0000.jpg", 1)
    assert read_classes(tmp_path / "classes.txt")[-1] == "000003"


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _raw_shard(path, key: bytes, value: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<I", len(key)) + key + struct.pack("<I", len(value)) + value)


def test_crafted_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    shard = tmp_path / "bin" / "images" / "00000000.bin"
    _raw_shard(shard, b"a.jpg", pickle.dumps(_Evil(marker)))
    assert not marker.exists()
    with pytest.raises(ToolkitError, match=r"00000000\.bin: unsafe or corrupt pickle \(refusing to load global "
                                           r"(posix|os)\.system\)"):
        read_shard(shard)
    (tmp_path / "bin" / "label.txt").write_text("images/00000000.bin\t0\n")
    with pytest.raises(ToolkitError):
        convert.bin_to_image(tmp_path / "bin", tmp_path / "out", workers=1, progress=False)
    assert not marker.exists()


# bytes(10**13): only builtins, yet unpickling it would try to allocate 10 TB.
_ALLOCATION_BOMB = b"\x80\x02c__builtin__\nbytes\n\x8a\x06" + (10 ** 13).to_bytes(6, "little") + b"\x85R."
# _codecs.encode(_codecs.encode("ab", "latin1"), "hex_codec"): nested calls, each may grow the data.
_NESTED_CODECS = (b"\x80\x02c_codecs\nencode\nq\x00h\x00X\x02\x00\x00\x00abX\x06\x00\x00\x00latin1\x86R"
                  b"X\t\x00\x00\x00hex_codec\x86R.")


@pytest.mark.parametrize("value, refused", [(_ALLOCATION_BOMB, r"bytes\(<integer>\)"),
                                           (_NESTED_CODECS, r"_codecs\.encode with codec 'hex_codec'")],
                         ids=["allocation_bomb", "nested_codecs"])
def test_value_pickles_that_would_allocate_without_data_are_refused(tmp_path, value, refused):
    shard = tmp_path / "00000003.bin"
    _raw_shard(shard, b"a.jpg", value)
    with pytest.raises(ToolkitError, match=r"00000003\.bin: unsafe or corrupt pickle \(refusing " + refused):
        read_shard(shard)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_every_pickle_protocol_of_bytes_loads(tmp_path, protocol):
    shard = tmp_path / "x.bin"
    image = b"\xff\xd8\x00jpeg\xe9" * 100
    _raw_shard(shard, b"a.jpg", pickle.dumps(image, protocol=protocol))
    assert read_shard(shard) == ("a.jpg", image)


def test_python2_str_value_loads_as_bytes(tmp_path):
    shard = tmp_path / "x.bin"
    _raw_shard(shard, b"a.jpg", b"\x80\x02U\x04\xff\xd8abq\x00.")      # Python 2: pickle.dumps(str, 2)
    assert read_shard(shard) == ("a.jpg", b"\xff\xd8ab")


def test_non_bytes_value_is_refused(tmp_path):
    shard = tmp_path / "x.bin"
    _raw_shard(shard, b"a.jpg", pickle.dumps(["not", "bytes"]))
    with pytest.raises(ToolkitError, match=r"x\.bin: corrupt shard \(value is list, expected image bytes"):
        read_shard(shard)


def test_truncated_shard_names_the_file(tmp_path):
    shard = tmp_path / "images" / "00000007.bin"
    write_shard(shard, "p/1.jpg", b"0123456789" * 50)
    data = shard.read_bytes()
    for cut in (2, 10, len(data) - 7):
        shard.write_bytes(data[:cut])
        with pytest.raises(ToolkitError, match=r"00000007\.bin: truncated shard"):
            read_shard(shard)


@pytest.mark.parametrize("key", ["../escape.jpg", "a/../../escape.jpg", "/tmp/abs_escape.jpg", "..\\escape.jpg"])
def test_bin2image_refuses_keys_outside_output(tmp_path, key):
    write_shard(tmp_path / "bin" / "images" / "00000000.bin", key, b"\xff\xd8data")
    (tmp_path / "bin" / "label.txt").write_text("images/00000000.bin\t0\n")
    with pytest.raises(ToolkitError, match="refusing"):
        convert.bin_to_image(tmp_path / "bin", tmp_path / "out" / "inner", workers=1, progress=False)
    assert not (tmp_path / "escape.jpg").exists() and not (tmp_path / "out" / "escape.jpg").exists()
    assert not os.path.exists("/tmp/abs_escape.jpg")


def test_cli_error_is_one_line_exit_2(repo_root, tmp_path):
    shard = tmp_path / "bin" / "images" / "00000000.bin"
    write_shard(shard, "a.jpg", b"\xff\xd8data")
    shard.write_bytes(shard.read_bytes()[:-3])
    (tmp_path / "bin" / "label.txt").write_text("images/00000000.bin\t0\n")
    cmd = [sys.executable, str(repo_root / "tools" / "convert_image_bin.py"), "--mode", "bin2image",
           "--bin_path", str(tmp_path / "bin"), "--image_path", str(tmp_path / "out"), "--no_progress"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {shard}: truncated shard"), result.stderr
    assert "Traceback" not in result.stderr


def test_cli_image2bin_prints_summary(repo_root, synthetic_tree, tmp_path):
    cmd = [sys.executable, str(repo_root / "tools" / "convert_image_bin.py"), "--mode", "image2bin",
           "--image_path", str(synthetic_tree), "--bin_path", str(tmp_path / "bin"), "--no_progress", "--workers", "2"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert re.search(r"\|\s*image2bin\s*\|\s*12\s*\|\s*4\s*\|\s*0\s*\|", result.stdout), result.stdout
    assert len(read_label_file(tmp_path / "bin" / "label.txt")) == 12


def test_label_file_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "label.txt"
    bad.write_text("images/00000000.bin\t0\nimages/00000001.bin\tcat\n")
    with pytest.raises(ToolkitError, match=r"label\.txt:2: label 'cat' is not an integer"):
        read_label_file(bad)
    bad.write_text("just-one-field\n")
    with pytest.raises(ToolkitError, match=r"label\.txt:1: expected 'path<TAB>label'"):
        read_label_file(bad)
    spaced = tmp_path / "spaced.txt"
    spaced.write_text("my photos/a b.jpg\t3\n")
    assert read_label_file(spaced) == [("my photos/a b.jpg", 3)]


def test_non_empty_output_needs_overwrite(synthetic_tree, tmp_path):
    out = tmp_path / "bin"
    convert.image_to_bin(synthetic_tree, out, workers=1, progress=False)
    with pytest.raises(ToolkitError, match="output folder is not empty"):
        convert.image_to_bin(synthetic_tree, out, workers=1, progress=False)
    report = convert.image_to_bin(synthetic_tree, out, workers=1, progress=False, overwrite=True)
    assert report.images == 12 and len(read_label_file(out / "label.txt")) == 12


def test_non_ascii_names_round_trip(faces_dir, tmp_path):
    tree = tmp_path / "tree"
    (tree / "李明").mkdir(parents=True)
    (tree / "Zoë").mkdir()
    shutil.copy(faces_dir / "obama.jpg", tree / "李明" / "照片 1.jpg")
    shutil.copy(faces_dir / "biden.jpg", tree / "Zoë" / "b.jpg")
    convert.image_to_bin(tree, tmp_path / "bin", workers=1, progress=False)
    assert read_shard(tmp_path / "bin" / "images" / "00000001.bin")[0] == "李明/照片 1.jpg"
    convert.bin_to_image(tmp_path / "bin", tmp_path / "back", workers=1, progress=False)
    assert (tmp_path / "back" / "李明" / "照片 1.jpg").read_bytes() == (faces_dir / "obama.jpg").read_bytes()
    from arcface_paddle.data.datasets import ImageFolderDataset
    ds = ImageFolderDataset(tmp_path / "back", label_file="label.txt", train=False)
    assert ds.paths[1].endswith("照片 1.jpg") and int(ds[1][1]) == 1


def test_image2bin_refuses_label_entries_outside_the_folder(faces_dir, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("obama.jpg\t0\n../faces/biden.jpg\t1\n")
    with pytest.raises(ToolkitError, match=r"labels\.txt: refusing unsafe key '\.\./faces/biden\.jpg'"):
        convert.image_to_bin(faces_dir, tmp_path / "bin", label_file=labels, workers=1, progress=False)
    assert not (tmp_path / "bin").exists()


def test_interrupted_image2bin_removes_what_it_wrote(synthetic_tree, tmp_path, monkeypatch):
    """Killed while writing the 4th shard: the 3 whole shards and the half one are removed again, and an
    output folder that held an old dataset keeps the files this run did not touch."""
    from arcface_paddle.core import safe_io
    real_write_shard, written = convert.write_shard, []

    def write_then_interrupt(path, key, image_bytes):
        if len(written) == 3:              # the 4th shard: killed halfway through writing it
            with safe_io.atomic_write(path) as handle:
                handle.write(encode_record(key, image_bytes)[:50])
                raise KeyboardInterrupt
        real_write_shard(path, key, image_bytes)
        written.append(path)

    monkeypatch.setattr(convert, "write_shard", write_then_interrupt)
    out = tmp_path / "bin"
    with pytest.raises(KeyboardInterrupt):
        convert.image_to_bin(synthetic_tree, out, workers=1, progress=False)
    assert len(written) == 3 and not out.exists()                      # nothing half-done stays
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    written.clear()
    with pytest.raises(KeyboardInterrupt):
        convert.image_to_bin(synthetic_tree, out, workers=1, progress=False, overwrite=True)
    assert sorted(os.listdir(out)) == ["notes.txt"]
    monkeypatch.undo()
    report = convert.image_to_bin(synthetic_tree, out, workers=1, progress=False, overwrite=True)
    assert report.images == 12 and len(read_label_file(out / "label.txt")) == 12


def test_bin2image_refuses_duplicate_keys(tmp_path):
    # Reference-made shards may carry bare file names: people0/1.jpg and people1/1.jpg both become "1.jpg".
    for index, data in enumerate((b"\xff\xd8first", b"\xff\xd8second")):
        write_shard(tmp_path / "bin" / "images" / f"{index:08d}.bin", "1.jpg", data)
    (tmp_path / "bin" / "label.txt").write_text("images/00000000.bin\t0\nimages/00000001.bin\t1\n")
    with pytest.raises(ToolkitError, match=r"00000001\.bin: key '1\.jpg' was already restored from "
                                           r"images/00000000\.bin \(duplicate keys"):
        convert.bin_to_image(tmp_path / "bin", tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out" / "label.txt").exists()
