"""MXNet RecordIO import: our writer, a hand-built record, multi-part records, rec2bin, bad input."""
import struct

import numpy as np
import pytest

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import encode_image
from arcface_paddle.data import recordio
from arcface_paddle.data.convert import rec_to_bin
from arcface_paddle.data.label_file import read_label_file
from arcface_paddle.data.shard_format import read_shard
from arcface_paddle.synthetic.faces import SyntheticFaces

MAGIC = struct.pack("<I", 0xCED7230A)


@pytest.fixture(scope="module")
def samples():
    faces = SyntheticFaces(3, 3, seed=2)
    return [(identity, encode_image(faces.render(identity, j))) for identity in range(3) for j in range(3)]


def _hand_record(payload: bytes) -> bytes:
    """One record exactly as dmlc-core lays it out: magic, cflag 0 | length, data, zero pad to 4."""
    return MAGIC + struct.pack("<I", len(payload)) + payload + b"\0" * ((-len(payload)) % 4)


def test_hand_built_rec_with_multi_float_label_header(tmp_path, samples):
    # record 0: InsightFace header, flag=2 → two float labels (first identity key, end key)
    header0 = struct.pack("<IfQQ", 2, 0.0, 0, 0) + struct.pack("<2f", 3.0, 4.0)
    image1 = struct.pack("<IfQQ", 0, 7.0, 1, 0) + samples[0][1]
    image2 = struct.pack("<IfQQ", 3, 0.0, 2, 0) + struct.pack("<3f", 5.0, 1.5, 2.5) + samples[4][1]
    identity = struct.pack("<IfQQ", 2, 0.0, 0, 0) + struct.pack("<2f", 1.0, 3.0)
    records = [_hand_record(p) for p in (header0, image1, image2, identity)]
    offsets = np.cumsum([0] + [len(r) for r in records])[:-1]
    (tmp_path / "train.rec").write_bytes(b"".join(records))
    (tmp_path / "train.idx").write_text("".join(f"{k}\t{o}\n" for k, o in enumerate(offsets)))

    header, rest = recordio.unpack_irheader(image2, "x")
    assert header.flag == 3 and header.label == (5.0, 1.5, 2.5) and rest == samples[4][1]
    # our writer lays out the same bytes; a single-number label always gets flag 0, as MXNet's pack does
    assert recordio.pack_irheader(0, 7.0, 1, 0, samples[0][1]) == image1
    assert recordio.pack_irheader(3, 7.0, 1, 0, samples[0][1]) == image1
    assert recordio.pack_irheader(0, (5.0, 1.5, 2.5), 2, 0, samples[4][1]) == image2
    report = rec_to_bin(tmp_path / "train.rec", tmp_path / "train.idx", tmp_path / "bin", workers=1, progress=False)
    assert (report.images, report.identities, report.skipped) == (2, 2, [])
    entries = read_label_file(tmp_path / "bin" / "label.txt")
    assert [label for _, label in entries] == [7, 5]
    assert read_shard(tmp_path / "bin" / entries[0][0]) == ("0000007/1.jpg", samples[0][1])
    assert read_shard(tmp_path / "bin" / entries[1][0]) == ("0000005/2.jpg", samples[4][1])


def test_writer_round_trip_including_split_records(tmp_path, samples):
    weird = (2, b"\x89PNG" + MAGIC * 2 + b"xyz" + MAGIC)       # contains aligned magic words → split record
    rec, idx = tmp_path / "t.rec", tmp_path / "t.idx"
    recordio.write_insightface_rec(rec, idx, samples + [weird])
    data = rec.read_bytes()
    lrecords = []
    for offset, payload in recordio.iter_records(rec):
        lrecords.append(payload)
    assert len(lrecords) == 1 + len(samples) + 1 + 3                   # header, images, weird, identities
    assert recordio.unpack_irheader(lrecords[len(samples) + 1], "x")[1] == weird[1]
    assert data.count(MAGIC) > len(lrecords)                            # the weird payload was split on disk
    report = rec_to_bin(rec, idx, tmp_path / "bin", workers=2, progress=False)
    assert report.images == len(samples) and len(report.skipped) == 1   # the fake PNG is skipped, not stored
    entries = read_label_file(tmp_path / "bin" / "label.txt")
    assert [label for _, label in entries] == [label for label, _ in samples]
    for (rel, _), (label, image) in zip(entries, samples):
        assert read_shard(tmp_path / "bin" / rel)[1] == image


def test_bad_magic_names_byte_offset(tmp_path, samples):
    rec, idx = tmp_path / "t.rec", tmp_path / "t.idx"
    recordio.write_insightface_rec(rec, idx, samples[:2])
    offsets = [int(line.split("\t")[1]) for line in idx.read_text().splitlines()]
    data = bytearray(rec.read_bytes())
    data[offsets[2]:offsets[2] + 4] = b"JUNK"
    rec.write_bytes(bytes(data))
    with pytest.raises(ToolkitError, match=rf"t\.rec: bad magic 0x4b4e554a at byte offset {offsets[2]}"):
        rec_to_bin(rec, idx, tmp_path / "bin", workers=1, progress=False)
    assert not (tmp_path / "bin" / "label.txt").exists()


def test_truncated_record_names_byte_offset(tmp_path, samples):
    rec, idx = tmp_path / "t.rec", tmp_path / "t.idx"
    recordio.write_insightface_rec(rec, idx, samples[:2])
    offsets = [int(line.split("\t")[1]) for line in idx.read_text().splitlines()]
    rec.write_bytes(rec.read_bytes()[:offsets[2] + 100])
    with pytest.raises(ToolkitError, match=rf"truncated record at byte offset {offsets[2]} "
                                           rf"\(needs \d+ bytes, only 92 remain\)"):
        list(recordio.iter_records(rec))


def test_rec_without_header_record_converts_every_key(tmp_path, samples):
    rec, idx = tmp_path / "plain.rec", tmp_path / "plain.idx"
    with recordio.RecordIOWriter(rec, idx) as writer:
        for key, (label, image) in enumerate(samples[:3]):
            writer.write(key, recordio.pack_irheader(0, float(label), key, 0, image))
    report = rec_to_bin(rec, idx, tmp_path / "bin", workers=2, progress=False)
    assert report.images == 3
    assert read_shard(tmp_path / "bin" / "images" / "00000000.bin") == ("0000000/0.jpg", samples[0][1])


def test_writer_leaves_nothing_behind_on_error(tmp_path):
    rec, idx = tmp_path / "x.rec", tmp_path / "x.idx"
    with pytest.raises(RuntimeError):
        with recordio.RecordIOWriter(rec, idx) as writer:
            writer.write(0, b"payload")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
