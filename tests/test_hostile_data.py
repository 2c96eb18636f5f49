"""Hostile-input matrix, data surfaces: `convert` (image2bin / bin2image / rec2bin / label),
`make-verification-bin`, `make-synthetic`, and the readers every other surface uses (images, pickles).

Each row: the bad input, the exit status, the one-line message, what must be unchanged / absent on disk.
(tests/hostile_inputs.py runs rows; tests/hostile_world.py builds the bad files.)
"""
import os

import hostile_world
import pytest
from hostile_inputs import Row, check_row, read_only_folder, table

from arcface_paddle.core.images import read_image
from arcface_paddle.core.restricted_pickle import load_pickle_file
from arcface_paddle.data.verification_bin import load_verification_bin


@pytest.fixture(scope="module")
def world(tmp_path_factory, faces_dir):
    root = str(tmp_path_factory.mktemp("hostile_data"))
    found = {"out": os.path.join(root, "out"), "ro": os.path.join(root, "read_only")}
    found.update(hostile_world.images(os.path.join(root, "images"), faces_dir))
    found.update(hostile_world.identity_trees(os.path.join(root, "trees"), faces_dir))
    found.update(hostile_world.shard_sets(os.path.join(root, "shards")))
    found.update(hostile_world.pickles(os.path.join(root, "pickles")))
    found["tree_bin"] = os.path.join(found["tree"], "bin")
    found["out_rel"] = os.path.join(root, "out_rel")
    return found


I2B = "--mode image2bin --no_progress --workers 1"
B2I = "--mode bin2image --no_progress --workers 1"
CONVERT = table(
    # --- must never hang, blow up memory or store a bomb (issue 13: FAIL before)
    Row("fifo-in-tree-skipped", f"{I2B} --image_path {{tree_fifo}} --bin_path {{out}}/fifo", 0,
        r"skipped ada/x\.jpg: not a regular file", unchanged="tree_fifo"),
    Row("bombs-in-tree-skipped", f"{I2B} --image_path {{tree_bombs}} --bin_path {{out}}/bombs", 0,
        r"skipped bob/bomb_30k\.png: image declares 30000×30000 pixels.*\n.*skipped bob/bomb_tiny\.png: image "
        r"declares 100000×100000 pixels, more than the 100 Mpx limit", unchanged="tree_bombs"),
    Row("bombs-skipped-with-workers", "--mode image2bin --no_progress --workers 2 --image_path {tree_bombs} "
        "--bin_path {out}/bombs2", 0, r"skipped bob/bomb_tiny\.png: image declares", unchanged="tree_bombs"),
    # --- never lose or overwrite the user's files (FAIL before)
    Row("image2bin-output-is-input", f"{I2B} --image_path {{tree}} --bin_path {{tree}} --overwrite", 2,
        r"the --bin_path folder is the --image_path folder", unchanged="tree"),
    Row("image2bin-output-inside-input", f"{I2B} --image_path {{tree}} --bin_path {{tree_bin}}", 2,
        r"tree/bin: the --bin_path folder is inside the --image_path folder", unchanged="tree", absent="tree_bin"),
    Row("bin2image-output-is-input", f"{B2I} --bin_path {{ds}} --image_path {{ds}} --overwrite", 2,
        r"the --image_path folder is the --bin_path folder", unchanged="ds"),
    Row("label-mode-onto-a-photo", "--mode label --image_path {tree} --label_file {tree}/ada/obama.jpg", 2,
        r"obama\.jpg: this output would overwrite the input", unchanged="tree"),
    Row("image2bin-disk-full-cleans-up", f"{I2B} --image_path {{tree}} --bin_path {{out}}/full", 2,
        r"cannot write \(File too large\) \(removed the \d+ files this run had written", unchanged="tree",
        subprocess=True, file_size_limit=20_000),
    # --- one line instead of a traceback or a wrong dataset (FAIL before)
    Row("newline-in-folder-name", f"{I2B} --image_path {{tree_newline}} --bin_path {{out}}/nl", 2,
        r"folder name 'eve\\nmallory' holds a tab or line break", unchanged="tree_newline"),
    Row("tab-in-file-name", f"{I2B} --image_path {{tree_tab}} --bin_path {{out}}/tab", 2,
        r"file name 'ada/a\\tb\.jpg' holds a tab or line break", unchanged="tree_tab"),
    Row("label-1e23", f"{I2B} --image_path {{flat}} --label_file {{labels_huge}} --bin_path {{out}}/huge", 2,
        r"labels_huge\.txt:1: label 100000000000000000000000 is larger than 2147483647"),
    Row("label-file-not-utf8", f"{I2B} --image_path {{flat}} --label_file {{nonutf8}} --bin_path {{out}}/l1", 2,
        r"latin1\.txt:1: label file is not UTF-8 text \(byte 0xe9\)"),
    Row("bin2image-label-outside-dataset", f"{B2I} --bin_path {{ds_label_outside}} --image_path {{out}}/outside", 2,
        r"refusing entry '\.\./ds/images/00000001\.bin'", unchanged="ds"),
    Row("image2bin-output-is-a-file", f"{I2B} --image_path {{tree}} --bin_path {{blocker}}", 2,
        r"a_file: output exists and is a file", unchanged="blocker"),
    # --- already refused before issue 13 (kept so they stay refused)
    Row("label-traversal", f"{I2B} --image_path {{flat}} --label_file {{labels_traversal}} --bin_path {{out}}/trav",
        2, r"refusing unsafe key '\.\./\.\./tree/bob/biden\.jpg'", unchanged="tree"),
    Row("image2bin-missing-input", f"{I2B} --image_path {{missing}} --bin_path {{out}}/m", 2, "image folder not found"),
    Row("image2bin-output-not-empty", f"{I2B} --image_path {{tree}} --bin_path {{ds}}", 2,
        r"output folder is not empty", unchanged="ds"),
    Row("bin2image-traversal-key", f"{B2I} --bin_path {{ds_traversal}} --image_path {{out}}/trav_key", 2,
        r"refusing unsafe key '\.\./\.\./\.\./evil\.png'", absent="out_rel"),
    Row("bin2image-pickle-payload", f"{B2I} --bin_path {{ds_payload}} --image_path {{out}}/payload", 2,
        r"00000003\.bin: unsafe or corrupt pickle \(refusing to load global os\.system\)"),
    Row("bin2image-truncated-shard", f"{B2I} --bin_path {{ds_truncated}} --image_path {{out}}/trunc", 2,
        r"00000003\.bin: truncated shard"),
    Row("bin2image-missing-label", f"{B2I} --bin_path {{tree}} --image_path {{out}}/nolabel", 2,
        r"label\.txt: label file not found"),
    Row("rec2bin-missing-rec", "--mode rec2bin --rec {missing} --bin_path {out}/rec", 2,
        r"missing\.jpg: RecordIO file not found"),
    Row("mode-needs-flags", "--mode image2bin", 2, r"--mode image2bin needs --image_path and --bin_path"),
)


@pytest.mark.parametrize("row", CONVERT)
def test_convert(row, world):
    check_row("convert", row, world)


def test_convert_read_only_output(world):
    with read_only_folder(world["ro"]):
        check_row("convert", Row("read-only", f"{I2B} --image_path {{tree}} --bin_path {{ro}}/x", 2,
                                 r"read_only/x: cannot create the output folder \((Read-only file system|Permission)"),
                  world)
        check_row("make-verification-bin", Row("read-only", "--image_path {tree} --output {ro}/val.bin", 2,
                                               r"read_only: output folder is not writable"), world)


VERIFICATION_BIN = table(
    Row("output-is-a-folder", "--image_path {tree} --output {tree}", 2, r"tree: verification file is a folder",
        unchanged="tree"),
    Row("output-is-an-input-photo", "--image_path {tree} --output {tree}/bob/biden.jpg", 2,
        r"biden\.jpg: this output would overwrite the input", unchanged="tree"),
    Row("newline-in-folder-name", "--image_path {tree_newline} --output {out}/nl.bin", 2, r"holds a tab or line break"),
    Row("missing-tree", "--image_path {missing} --output {out}/m.bin", 2, r"missing\.jpg: image folder not found"),
    Row("too-many-pairs", "--image_path {tree} --output {out}/many.bin --num_pairs 100", 2,
        r"only \d+ distinct balanced pairs available"),
    Row("negative-pairs", "--image_path {tree} --output {out}/neg.bin --num_pairs -4", 2,
        r"--num_pairs -4: must not be negative"),
)


@pytest.mark.parametrize("row", VERIFICATION_BIN)
def test_make_verification_bin(row, world):
    check_row("make-verification-bin", row, world)


MAKE_SYNTHETIC = table(
    Row("negative-identities", "--output {out}/syn --num_identities -5", 2,
        r"--num_identities -5: must not be negative"),
    Row("zero-identities", "--output {out}/syn --num_identities 0", 2, r"--num_identities and --images_per_identity"),
    Row("output-is-a-file", "--output {blocker} --num_identities 2 --images_per_identity 2", 2,
        r"a_file: output folder is not writable"),
)


@pytest.mark.parametrize("row", MAKE_SYNTHETIC)
def test_make_synthetic(row, world):
    check_row("make-synthetic", row, world)


# ---- API surfaces: the readers behind every command (run through run_cli: a ToolkitError is exit 2)
IMAGES = table(
    Row("bomb-74-bytes", "{bomb_tiny}", 2,
        r"bomb_tiny\.png: image declares 100000×100000 pixels, more than the 100 Mpx"),
    Row("bomb-30k", "{bomb_30k}", 2, r"bomb_30k\.png: image declares 30000×30000 pixels"),
    Row("bomb-jpeg-sof", "{bomb_jpeg}", 2, r"bomb_jpeg\.jpg: image declares 65000×65000 pixels"),
    Row("bomb-bmp-via-pillow", "{bomb_bmp}", 2, r"bomb_bmp\.bmp: image declares 3,600,000,000 pixels"),
    Row("bomb-hdr-via-opencv", "{bomb_hdr}", 2, r"bomb_hdr\.hdr: image declares too many pixels"),
    Row("fifo", "{fifo_jpg}", 2, r"fifo\.jpg: not a regular file"),
    Row("folder", "{dir_jpg}", 2, r"folder\.jpg: is a folder"),
    Row("missing", "{missing}", 2, r"missing\.jpg: image file not found"),
    Row("corrupt", "{corrupt_jpg}", 2, r"corrupt_jpg\.jpg: not a readable image"),
    Row("empty", "{empty_jpg}", 2, r"empty_jpg\.jpg: not a readable image \(empty file\)"),
)


@pytest.mark.parametrize("row", IMAGES)
def test_read_image(row, world):
    check_row(lambda argv: read_image(argv[0]), row, world)


PICKLES = table(
    Row("memo-amplified-lfw", "{lfw_amplified}", 2, r"lfw\.bin: refusing a pickle that expands far beyond its"),
    Row("dag-tuple-dict-key", "{dag_key}", 2, r"dag_key\.bin: refusing a pickle that expands far beyond"),
    Row("deeply-nested", "{deep_list}", 2, r"deep_list\.bin: refusing a pickle .*nested over 100 deep"),
    Row("code-payload", "{lfw_payload}", 2, r"unsafe or corrupt pickle \(refusing to load global os\.system\)"),
    Row("truncated", "{lfw_truncated}", 2, r"lfw\.bin: corrupt pickle"),
    Row("not-a-pickle", "{nonutf8}", 2, r"latin1\.txt: (unsafe or )?corrupt pickle"),
)


@pytest.mark.parametrize("row", PICKLES)
def test_restricted_pickle(row, world):
    check_row(lambda argv: load_pickle_file(argv[0], "pickle", allow_numpy=True), row, world)


def test_verification_bin_amplified_is_refused_before_stacking(world):
    check_row(lambda argv: load_verification_bin(argv[0], image_size=112),
              Row("amplified", "{lfw_amplified}", 2, r"expands far beyond"), world)


def test_header_fast_path_agrees_with_pillow(repo_root):
    """The PNG/JPEG size read by hand (the training hot path) equals Pillow's on every real photo of the
    repository and on encoder variants (progressive, greyscale, 16-bit, alpha)."""
    import glob

    import cv2
    import numpy as np
    from PIL import Image

    from arcface_paddle.core.images import _png_or_jpeg_size

    files = [path for pattern in ("tests/data/**/*.jpg", "tests/data/**/*.png", "demo/**/*.jpg")
             for path in glob.glob(str(repo_root / pattern), recursive=True)]
    blobs = [open(path, "rb").read() for path in files]
    image = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    blobs += [cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes(),
              cv2.imencode(".jpg", image[:, :, 0])[1].tobytes(),
              cv2.imencode(".png", image.astype(np.uint16) * 257)[1].tobytes(),
              cv2.imencode(".png", np.dstack([image, image[:, :, :1]]))[1].tobytes()]
    assert len(blobs) >= 10
    for blob in blobs:
        import io
        assert _png_or_jpeg_size(blob) == Image.open(io.BytesIO(blob)).size
