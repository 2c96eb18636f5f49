"""Hostile files for the hostile-input matrix, built once per test module (small: the whole set takes ~1 s).

Each builder writes into a folder and returns ``{name: path}`` entries for the world the rows refer to.
Everything is made here from the repo's own test data and models — nothing is downloaded.
"""
from __future__ import annotations

import os
import pickle
import shutil
import struct
import zlib

import cv2
import numpy as np

from arcface_paddle.data.shard_format import encode_record, write_shard_dataset

PAYLOAD = b"cos\nsystem\n(S'echo owned > /tmp/owned'\ntR."          # os.system(...) if ever unpickled


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares width×height pixels, with almost no pixel data (a decompression bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def other_bombs() -> dict:
    """Headers declaring billions of pixels in formats read by Pillow (BMP, JPEG SOF) and by OpenCV alone (HDR)."""
    bmp = (b"BM" + struct.pack("<IHHI", 0, 0, 0, 54)
           + struct.pack("<IiiHHIIiiII", 40, 60000, 60000, 1, 24, 0, 0, 0, 0, 0, 0) + b"\x00" * 64)
    jpeg = b"\xff\xd8\xff\xc0" + struct.pack(">HBHHB", 11, 8, 65000, 65000, 1) + b"\x01\x11\x00\xff\xd9"
    hdr = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 100000 +X 100000\n" + b"\x00" * 100
    return {"bomb_bmp": (".bmp", bmp), "bomb_jpeg": (".jpg", jpeg), "bomb_hdr": (".hdr", hdr)}


def small_png(seed: int, size: int = 32) -> bytes:
    image = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return cv2.imencode(".png", image)[1].tobytes()


def dag_tuple_key_pickle(depth: int = 60) -> bytes:
    """A dict whose key is a tuple nested ``depth`` deep, each level holding the one below twice: 300 bytes
    that make hashing the key take 2^depth steps (needs no global at all)."""
    ops = bytearray(b"\x80\x04)\x94")                       # PROTO 4, EMPTY_TUPLE, MEMOIZE (0)
    for level in range(depth):
        ops += b"h" + bytes([level]) + b"h" + bytes([level]) + b"\x86\x94"   # BINGET, BINGET, TUPLE2, MEMOIZE
    ops += b"}h" + bytes([depth]) + b"N" + b"s."           # EMPTY_DICT, BINGET top, NONE, SETITEM, STOP
    return bytes(ops)


def images(root: str, faces_dir) -> dict:
    os.makedirs(root, exist_ok=True)
    world = {}
    for name, data in (("bomb_tiny", png_declaring(100_000, 100_000)), ("bomb_30k", png_declaring(30_000, 30_000)),
                       ("corrupt_jpg", b"\xff\xd8 not a jpeg at all"), ("empty_jpg", b"")):
        world[name] = os.path.join(root, name + (".png" if name.startswith("bomb") else ".jpg"))
        with open(world[name], "wb") as handle:
            handle.write(data)
    for name, (extension, data) in other_bombs().items():
        world[name] = os.path.join(root, name + extension)
        with open(world[name], "wb") as handle:
            handle.write(data)
    world["fifo_jpg"] = os.path.join(root, "fifo.jpg")
    os.mkfifo(world["fifo_jpg"])
    world["dir_jpg"] = os.path.join(root, "folder.jpg")
    os.mkdir(world["dir_jpg"])
    world["face"] = os.path.join(root, "obama.jpg")
    shutil.copy(os.path.join(faces_dir, "obama.jpg"), world["face"])
    world["face2"] = os.path.join(root, "obama2.jpg")
    shutil.copy(os.path.join(faces_dir, "obama2.jpg"), world["face2"])
    world["missing"] = os.path.join(root, "missing.jpg")
    world["blocker"] = os.path.join(root, "a_file")
    with open(world["blocker"], "w") as handle:
        handle.write("a file where a folder is expected")
    world["nonutf8"] = os.path.join(root, "latin1.txt")
    with open(world["nonutf8"], "wb") as handle:
        handle.write("caf\xe9\t0\n".encode("latin-1"))
    return world


def identity_trees(root: str, faces_dir) -> dict:
    """good tree (2 people × 2 photos), the same with a FIFO / bombs, and trees with a newline / tab in names."""
    world = {}
    people = {"ada": ["obama.jpg", "obama2.jpg"], "bob": ["biden.jpg", "grace_hopper.jpg"]}
    for tree, extra in (("tree", None), ("tree_fifo", "fifo"), ("tree_bombs", "bombs"),
                        ("tree_newline", "newline"), ("tree_tab", "tab")):
        path = world[tree] = os.path.join(root, tree)
        for person, files in people.items():
            os.makedirs(os.path.join(path, person))
            for name in files:
                shutil.copy(os.path.join(faces_dir, name), os.path.join(path, person, name))
        if extra == "fifo":
            os.mkfifo(os.path.join(path, "ada", "x.jpg"))
        elif extra == "bombs":
            for name, (w, h) in (("bomb_tiny.png", (100_000, 100_000)), ("bomb_30k.png", (30_000, 30_000))):
                with open(os.path.join(path, "bob", name), "wb") as handle:
                    handle.write(png_declaring(w, h))
        elif extra == "newline":
            os.makedirs(os.path.join(path, "eve\nmallory"))
            shutil.copy(os.path.join(faces_dir, "obama.jpg"), os.path.join(path, "eve\nmallory", "a.jpg"))
        elif extra == "tab":
            shutil.copy(os.path.join(faces_dir, "obama.jpg"), os.path.join(path, "ada", "a\tb.jpg"))
    world["flat"] = os.path.join(root, "tree", "ada")
    for name, text in (("labels_huge", "obama.jpg\t100000000000000000000000\n"),
                       ("labels_traversal", "obama.jpg\t0\n../../tree/bob/biden.jpg\t1\n")):
        world[name] = os.path.join(root, name + ".txt")
        with open(world[name], "w") as handle:
            handle.write(text)
    return world


def shard_sets(root: str) -> dict:
    """A good 8-shard dataset and variants with one bad shard or a bad label.txt."""
    world = {}
    records = [(f"{i % 2}/{i}.png", small_png(i), i % 2) for i in range(8)]
    good = world["ds"] = os.path.join(root, "ds")
    write_shard_dataset(good, records)
    for name in ("ds_truncated", "ds_payload", "ds_traversal", "ds_bomb"):
        shutil.copytree(good, os.path.join(root, name))
        world[name] = os.path.join(root, name)
        shard = os.path.join(root, name, "images", "00000003.bin")
        key = b"1/3.png"
        if name == "ds_truncated":
            data = open(shard, "rb").read()[:30]
        elif name == "ds_payload":
            data = struct.pack("<I", len(key)) + key + struct.pack("<I", len(PAYLOAD)) + PAYLOAD
        elif name == "ds_traversal":
            data = encode_record("../../../evil.png", small_png(3))
        else:
            data = encode_record("1/3.png", png_declaring(100_000, 100_000))
        with open(shard, "wb") as handle:
            handle.write(data)
    huge = "images/00000000.bin\t0\nimages/00000001.bin\t100000000000000000000000\n"
    for name, label_text in (("ds_label_huge", huge),
                             ("ds_label_outside", "images/00000000.bin\t0\n../ds/images/00000001.bin\t1\n"),
                             ("ds_sparse", "".join(f"images/{i:08d}.bin\t{(i % 2) * 2_000_000_000}\n"
                                                   for i in range(8)))):
        shutil.copytree(good, os.path.join(root, name))
        world[name] = os.path.join(root, name)
        with open(os.path.join(world[name], "label.txt"), "w") as handle:
            handle.write(label_text)
    shutil.copytree(good, os.path.join(root, "ds_label_latin1"))
    world["ds_label_latin1"] = os.path.join(root, "ds_label_latin1")
    with open(os.path.join(world["ds_label_latin1"], "label.txt"), "wb") as handle:
        handle.write("images/00000000.bin\t0\n# caf\xe9\n".encode("latin-1"))
    return world


def pickles(root: str) -> dict:
    """Verification sets and reference indexes: amplified, code-running, wrong-sized."""
    os.makedirs(root, exist_ok=True)
    image = cv2.imencode(".jpg", np.full((112, 112, 3), 128, np.uint8))[1].tobytes()
    contents = {
        "lfw_amplified": pickle.dumps(([image] * 100_000, [True, False] * 25_000), protocol=4),
        "lfw_payload": PAYLOAD,
        "lfw_truncated": pickle.dumps(([image] * 4, [True, False]), protocol=4)[:200],
        "ref_amplified": pickle.dumps({"label": ["x"] * 100_000, "feature": [[0.5] * 512] * 100_000}, protocol=4),
        "ref_64d": pickle.dumps({"label": ["a", "b"], "feature": np.random.default_rng(0).random((2, 64),
                                                                                                np.float32)}),
        "ref_payload": PAYLOAD,
        "dag_key": dag_tuple_key_pickle(),
        "deep_list": b"\x80\x04" + b"]" * 5000 + b"a" * 4999 + b".",
    }
    world = {}
    for name, data in contents.items():
        folder = os.path.join(root, name)           # each verification set in a folder of its own, as lfw.bin
        os.makedirs(folder)
        world[name] = os.path.join(folder, "lfw.bin" if name.startswith("lfw") else name + ".bin")
        with open(world[name], "wb") as handle:
            handle.write(data)
        world[name + "_dir"] = folder
    return world


SFACE_MODEL_ID = "fa18010f7c7351d9"


def recognition_models(root: str, repo_root) -> dict:
    """Copies of the shipped SFace recognizer with one thing wrong each (unchanged files are symlinks)."""
    source = os.path.join(repo_root, "inference_model", "mobilenet_sface")
    with open(os.path.join(source, "model.yaml"), encoding="utf-8") as handle:
        good_yaml = handle.read()
    variants = {
        "rec_bitflip": (good_yaml, "flip"),
        "rec_truncated": (good_yaml.replace(f"model_id: {SFACE_MODEL_ID}\n", ""), "truncate"),
        "rec_std0": (good_yaml.replace("std:\n- 128.0\n- 128.0\n- 128.0", "std: [0, 0, 0]"), None),
        "rec_mean_abc": (good_yaml.replace("mean:\n- 127.5\n- 127.5\n- 127.5", "mean: abc"), None),
        "rec_input112": (good_yaml.replace("input_size:\n- 112\n- 112", "input_size: 112"), None),
        "rec_latin1": (good_yaml + "# caf\xe9\n", "latin1"),
    }
    world = {}
    for name, (text, damage) in variants.items():
        folder = world[name] = os.path.join(root, name)
        os.makedirs(folder)
        os.symlink(os.path.join(source, "inference.pdmodel"), os.path.join(folder, "inference.pdmodel"))
        params = os.path.join(folder, "inference.pdiparams")
        if damage in ("flip", "truncate"):
            with open(os.path.join(source, "inference.pdiparams"), "rb") as handle:
                data = bytearray(handle.read())
            if damage == "flip":
                data[len(data) // 2] ^= 0x40
            else:
                data = data[:len(data) // 2]
            with open(params, "wb") as handle:
                handle.write(data)
        else:
            os.symlink(os.path.join(source, "inference.pdiparams"), params)
        with open(os.path.join(folder, "model.yaml"), "wb") as handle:
            handle.write(text.encode("latin-1" if damage == "latin1" else "utf-8"))
    assert world and all(text != good_yaml for name, (text, damage) in variants.items() if damage is None)
    return world


def galleries(root: str) -> dict:
    """index.bin files carrying the shipped recognizer's model_id but wrong inside."""
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(0)

    def unit(rows, dims):
        features = rng.standard_normal((rows, dims)).astype(np.float32)
        return features / np.linalg.norm(features, axis=1, keepdims=True)

    unnormalised = unit(3, 128) * 740
    nan = unit(3, 128)
    nan[1, 5] = np.nan
    world = {}
    for name, features, model_id in (("index_256d", unit(3, 256), SFACE_MODEL_ID),
                                     ("index_unnormalised", unnormalised, SFACE_MODEL_ID),
                                     ("index_nan", nan, SFACE_MODEL_ID),
                                     ("index_foreign", unit(3, 128), "0000aaaa0000aaaa")):
        world[name] = os.path.join(root, name + ".bin")
        with open(world[name], "wb") as handle:
            np.savez(handle, magic=np.array("arcface_paddle.gallery"), format_version=np.array(1, np.int64),
                     names=np.array(["obama", "biden", "grace"]), features=features,
                     embedding_size=np.array(features.shape[1], np.int64), model_id=np.array(model_id),
                     crop_mode=np.array("aligned"))
    world["index_truncated"] = os.path.join(root, "index_truncated.bin")
    with open(world["index_foreign"], "rb") as source, open(world["index_truncated"], "wb") as handle:
        handle.write(source.read()[:500])
    world["index_empty_file"] = os.path.join(root, "index_empty_file.bin")
    open(world["index_empty_file"], "wb").close()
    return world


def videos(root: str, faces_dir) -> dict:
    """A 20-frame MJPG .avi cut after 30% of its bytes: its header still says 20 frames, 6 decode."""
    from arcface_paddle.pipeline.media_io import video_writer

    os.makedirs(root, exist_ok=True)
    frame = cv2.resize(cv2.imread(os.path.join(faces_dir, "obama.jpg"))[:, :, ::-1], (160, 200))
    whole = os.path.join(root, "whole.avi")
    with video_writer(whole, 10, (160, 200)) as write:
        for _ in range(20):
            write(frame)
    with open(whole, "rb") as handle:
        data = handle.read()
    world = {"video": whole, "video_cut": os.path.join(root, "cut.avi")}
    with open(world["video_cut"], "wb") as handle:
        handle.write(data[:len(data) * 3 // 10])
    return world


def checkpoints(root: str) -> dict:
    """Checkpoint folders: meta.json not UTF-8; a backbone.pdparams that is a code-running pickle."""
    world = {}
    for name, meta, params in (("ckpt_latin1", '{"network": "caf\xe9"}'.encode("latin-1"), b""),
                               ("ckpt_payload", b'{"network": "MobileFaceNet_128", "step": 1}', PAYLOAD)):
        folder = world[name] = os.path.join(root, name)
        os.makedirs(folder)
        with open(os.path.join(folder, "meta.json"), "wb") as handle:
            handle.write(meta)
        with open(os.path.join(folder, "backbone.pdparams"), "wb") as handle:
            handle.write(params)
    return world


def configs(root: str, repo_root) -> dict:
    """Training configs: one not UTF-8, one with a NaN inside the file."""
    os.makedirs(root, exist_ok=True)
    tiny = os.path.join(repo_root, "configs", "synthetic_tiny.yaml")
    world = {"config_tiny": tiny, "config_latin1": os.path.join(root, "latin1.yaml"),
             "config_nan": os.path.join(root, "nan.yaml"),
             "config_detector": os.path.join(repo_root, "configs", "blazeface_short_range.yaml")}
    with open(world["config_latin1"], "wb") as handle:
        handle.write(f"base: {tiny}\n# caf\xe9\n".encode("latin-1"))
    with open(world["config_nan"], "w") as handle:
        handle.write(f"base: {tiny}\nnum_epochs: .nan\n")
    return world


def detection_sets(root: str, faces_dir) -> dict:
    """RetinaFace-format annotation files whose second image is unreadable / a decompression bomb."""
    world = {}
    for name, second, data in (("det_unreadable", "b.jpg", b"garbage, not a jpeg"),
                               ("det_bomb", "c.png", png_declaring(100_000, 100_000))):
        folder = os.path.join(root, name)
        os.makedirs(os.path.join(folder, "images"))
        shutil.copy(os.path.join(faces_dir, "obama.jpg"), os.path.join(folder, "images", "a.jpg"))
        with open(os.path.join(folder, "images", second), "wb") as handle:
            handle.write(data)
        world[name] = os.path.join(folder, "label.txt")
        with open(world[name], "w") as handle:
            handle.write(f"# a.jpg\n40 40 80 90\n# {second}\n10 10 50 50\n")
    return world
