"""Hostile-input matrix, pipeline surfaces: `recognize` (test_recognition.py), `compare`, `detect`, `align`,
and the gallery reader every store builds on (load_index / validate_gallery).

Each row: the bad input, the exit status, the one-line message, what must be unchanged / absent on disk.
"""
import os
import shutil
import subprocess
import sys
import time

import hostile_world
import pytest
from hostile_inputs import Row, check_row, read_only_folder, table

from arcface_paddle.stores.index_format import load_index


@pytest.fixture(scope="module")
def world(tmp_path_factory, faces_dir, repo_root):
    root = str(tmp_path_factory.mktemp("hostile_pipeline"))
    found = {name: os.path.join(root, folder) for name, folder in
             (("out", "out"), ("ro", "read_only"), ("trees", "trees"))}
    found.update(hostile_world.images(os.path.join(root, "images"), faces_dir))
    found.update(hostile_world.identity_trees(found["trees"], faces_dir))
    found.update(hostile_world.pickles(os.path.join(root, "pickles")))
    found.update(hostile_world.galleries(os.path.join(root, "galleries")))
    found.update(hostile_world.recognition_models(os.path.join(root, "models"), repo_root))
    found.update(hostile_world.videos(os.path.join(root, "videos"), faces_dir))
    found["index"] = os.path.join(root, "index.bin")
    shutil.copy(repo_root / "demo" / "index.bin", found["index"])
    found["photos"] = os.path.join(root, "photos")
    os.makedirs(found["photos"])
    for name in ("obama.jpg", "biden.jpg"):
        shutil.copy(faces_dir / name, os.path.join(found["photos"], name))
    found["bomb_folder"] = os.path.join(root, "bomb_folder")
    os.makedirs(found["bomb_folder"])
    shutil.copy(found["face"], found["bomb_folder"])
    shutil.copy(found["bomb_tiny"], found["bomb_folder"])
    found["tree_aligned"] = os.path.join(found["tree"], "aligned")
    found["full_video"] = os.path.join(found["out"], "full", "whole.avi")
    found["imported"] = os.path.join(found["out"], "imported.bin")
    return found


OUT = "--output {out}/run"
RECOGNIZE = table(
    # --- the user's photo is never replaced by its drawn copy (FAIL before)
    Row("output-overwrites-the-photo", "--input {photos}/obama.jpg --output {photos} --index {index}", 2,
        r"photos/obama\.jpg: this output would overwrite the input .*photos/obama\.jpg", unchanged="photos"),
    Row("folder-output-is-the-folder", "--input {photos} --output {photos} --index {index}", 2,
        r"would overwrite the input", unchanged="photos"),
    # --- silently wrong answers become errors (FAIL before)
    Row("rec-thresh-nan", f"--input {{face}} --index {{index}} --rec_thresh nan {OUT}", 2,
        r"--rec_thresh nan: expected a finite number"),
    Row("index-256d-same-model-id", f"--input {{face}} --index {{index_256d}} {OUT}", 2,
        r"index_256d\.bin: gallery holds 256-d features but the recognizer gives 128-d"),
    Row("index-unnormalised", f"--input {{face}} --index {{index_unnormalised}} {OUT}", 2,
        r"index_unnormalised\.bin: corrupt gallery \(3 feature rows are not unit length"),
    Row("index-nan", f"--input {{face}} --index {{index_nan}} {OUT}", 2,
        r"index_nan\.bin: corrupt gallery \(non-finite feature values, first in row 1"),
    Row("import-64d-reference", "--import_index {ref_64d} --build_index {imported}", 2,
        r"ref_64d\.bin: gallery holds 64-d features but the recognizer gives 128-d", absent="imported"),
    Row("import-onto-its-source", "--import_index {ref_64d} --build_index {ref_64d}", 2,
        r"ref_64d\.bin: this output would overwrite the input", unchanged="ref_64d"),
    Row("import-amplified-reference", "--import_index {ref_amplified} --build_index {imported}", 2,
        r"ref_amplified\.bin: refusing a pickle that expands far beyond", absent="imported"),
    Row("params-bit-flipped", f"--rec --input {{face}} --rec_model {{rec_bitflip}} {OUT}", 2,
        r"rec_bitflip/inference\.pdiparams: does not match model\.yaml"),
    Row("params-truncated-names-params", f"--rec --input {{face}} --rec_model {{rec_truncated}} {OUT}", 2,
        r"rec_truncated/inference\.pdiparams: paddle\.inference could not load the weights"),
    Row("model-yaml-std-zero", f"--rec --input {{face}} --rec_model {{rec_std0}} {OUT}", 2,
        r"rec_std0/model\.yaml: std must be positive numbers, found \[0, 0, 0\]"),
    Row("model-yaml-mean-text", f"--rec --input {{face}} --rec_model {{rec_mean_abc}} {OUT}", 2,
        r"model\.yaml: mean must be a list of 3 numbers, found 'abc'"),
    Row("model-yaml-input-size-int", f"--rec --input {{face}} --rec_model {{rec_input112}} {OUT}", 2,
        r"model\.yaml: input_size must be \[height, width\], found 112"),
    Row("model-yaml-not-utf8", f"--rec --input {{face}} --rec_model {{rec_latin1}} {OUT}", 2,
        r"rec_latin1/model\.yaml: model\.yaml is not UTF-8 text"),
    Row("video-cut-short-warns", "--det --input {video_cut} --output {out}/video", 0,
        r"warning: .*cut\.avi: only 6 of the 20 frames its container declares could be decoded"),
    Row("video-disk-full", "--det --input {video} --output {out}/full", 2,
        r"whole\.avi: the video could not be written completely", absent="full_video", subprocess=True,
        file_size_limit=30_000),
    Row("bomb-photo", f"--input {{bomb_tiny}} --index {{index}} {OUT}", 2, r"bomb_tiny\.png: image declares"),
    Row("bomb-in-folder-listed", f"--det --input {{bomb_folder}} {OUT}", 2,
        r"bomb_folder: 1 of 2 images could not be processed"),
    Row("build-index-output-is-folder", "--build_index {trees} --img_dir {tree}", 2,
        r"trees: cannot tell the gallery backend"),
    Row("build-index-label-not-utf8", "--build_index {out}/l.bin --label {nonutf8}", 2,
        r"latin1\.txt:1: label file is not UTF-8 text"),
    Row("cdd-num-negative", f"--input {{face}} --index {{index}} --cdd_num -1 {OUT}", 2,
        r"--cdd_num -1: must not be negative"),
    # --- already refused before issue 13
    Row("index-foreign-model", f"--input {{face}} --index {{index_foreign}} {OUT}", 2, r"model_id 0000aaaa0000aaaa"),
    Row("index-truncated", f"--input {{face}} --index {{index_truncated}} {OUT}", 2, r"corrupt or truncated index"),
    Row("index-empty-file", f"--input {{face}} --index {{index_empty_file}} {OUT}", 2, r"\(empty file\)"),
    Row("index-is-reference-pickle", f"--input {{face}} --index {{ref_64d}} {OUT}", 2,
        r"reference-toolkit \(pickled\) index"),
    Row("import-payload", "--import_index {ref_payload} --build_index {imported}", 2,
        r"refusing to load global os\.system", absent="imported"),
    Row("missing-input", f"--input {{missing}} {OUT}", 2, r"missing\.jpg: input not found"),
    Row("font-is-not-a-font", f"--input {{face}} --font {{blocker}} {OUT}", 2, r"not a readable TrueType"),
    Row("nothing-to-do", "", 2, r"nothing to do"),
    Row("corrupt-photo", f"--det --input {{corrupt_jpg}} {OUT}", 2, r"corrupt_jpg\.jpg: not a readable image"),
)


@pytest.mark.parametrize("row", RECOGNIZE)
def test_recognize(row, world):
    check_row("recognize", row, world)


COMPARE = table(
    Row("threshold-nan", "{face} {face2} --threshold nan", 2, r"--threshold nan: expected a finite number"),
    Row("show-overwrites-input", "{photos}/obama.jpg {face2} --show {photos}/obama.jpg", 2,
        r"would overwrite the input", unchanged="photos"),
    Row("show-is-a-folder", "{face} {face2} --show {dir_jpg}", 2, r"folder\.jpg: side-by-side picture is a folder"),
    Row("bomb", "{bomb_tiny} {face}", 2, r"bomb_tiny\.png: image declares"),
    Row("fifo", "{fifo_jpg} {face}", 2, r"fifo\.jpg: not a regular file"),
    Row("show-not-an-image-name", "{face} {face2} --show {out}/pair.txt", 2, r"needs an image file name"),
    Row("missing", "{missing} {face}", 2, r"missing\.jpg: image file not found"),
)


@pytest.mark.parametrize("row", COMPARE)
def test_compare(row, world):
    check_row("compare", row, world)


DETECT = table(
    Row("draw-into-input-folder", "{photos} --draw {photos}", 2, r"would overwrite the input", unchanged="photos"),
    Row("json-is-an-input", "{face} --json {face}", 2, r"obama\.jpg: this output would overwrite the input"),
    Row("json-is-a-folder", "{face} --json {tree}", 2, r"tree: --json file is a folder"),
    Row("threshold-nan", "{face} --threshold nan", 2, r"--threshold nan: expected a finite number"),
    Row("bomb-in-batch-listed", "{face} {bomb_tiny}", 2, r"1 of 2 images could not be read"),
    Row("single-bomb", "{bomb_30k}", 2, r"bomb_30k\.png: image declares"),
    Row("fifo", "{fifo_jpg}", 2, r"fifo\.jpg: not a regular file"),
    Row("missing", "{missing}", 2, r"missing\.jpg: image file not found"),
    Row("corrupt", "{corrupt_jpg}", 2, r"not a readable image"),
)


@pytest.mark.parametrize("row", DETECT)
def test_detect(row, world):
    check_row("detect", row, world)


ALIGN = table(
    Row("output-inside-input", "--input {tree} --output {tree_aligned}", 2,
        r"aligned: the --output folder is inside the --input folder", unchanged="tree", absent="tree_aligned"),
    Row("input-inside-output", "--input {tree} --output {trees}", 2, r"the --output folder contains the --input",
        unchanged="trees"),
    Row("same-folder", "--input {tree} --output {tree}", 2, r"the --output folder is the --input", unchanged="tree"),
    Row("margin-nan", "--input {tree} --output {out}/al --margin nan", 2, r"--margin nan: expected a finite number"),
    Row("bombs-listed-run-goes-on", "--input {tree_bombs} --output {out}/aligned --workers 1", 0,
        r"bob/bomb_tiny\.png +\| image declares", unchanged="tree_bombs"),
    Row("size-too-small", "--input {tree} --output {out}/small --size 8", 2, r"size must be 16 to 1024 pixels"),
    Row("size-too-large", "--input {tree} --output {out}/big --size 100000", 2, r"size must be 16 to 1024 pixels, "
        r"got 100000"),
    Row("missing-input", "--input {missing} --output {out}/m", 2, r"input folder not found"),
)


@pytest.mark.parametrize("row", ALIGN)
def test_align(row, world):
    check_row("align", row, world)


def test_compare_show_in_read_only_folder(world):
    with read_only_folder(world["ro"]):
        check_row("compare", Row("read-only", "{face} {face2} --show {ro}/pair.png", 2,
                                 r"read_only: output folder is not writable"), world)


GALLERY_API = table(
    Row("256d", "{index_256d}", 2, r"256-d features but the recognizer gives 128-d"),
    Row("unnormalised", "{index_unnormalised}", 2, r"not unit length"),
    Row("nan", "{index_nan}", 2, r"non-finite feature values"),
    Row("truncated", "{index_truncated}", 2, r"corrupt or truncated index"),
    Row("fifo", "{fifo_jpg}", 2, r"not a regular file"),
)


@pytest.mark.parametrize("row", GALLERY_API)
def test_load_index(row, world):
    check_row(lambda argv: load_index(argv[0], expected_model_id=hostile_world.SFACE_MODEL_ID, embedding_size=128),
              row, world)


def test_concurrent_appends_both_land(world, faces_dir):
    """Two `--build_index --append` runs on one index: B runs from start to end while A is embedding. Before
    issue 13, A then wrote the index it had read at its start, and B's faces were gone (both exit 0); now A
    re-reads and writes under a lock, so both land."""
    index, out = os.path.join(world["out"], "shared.bin"), world["out"]
    os.makedirs(os.path.join(out, "seed", "seed"))
    shutil.copy(faces_dir / "grace_hopper.jpg", os.path.join(out, "seed", "seed"))
    os.makedirs(os.path.join(out, "b", "bob"))
    shutil.copy(faces_dir / "biden.jpg", os.path.join(out, "b", "bob"))
    slow_list = os.path.join(out, "a_slow.txt")              # A: one photo listed 120 times (a few seconds)
    with open(slow_list, "w") as handle:
        handle.write(f"{faces_dir / 'obama.jpg'}\tada\n" * 120)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "arcface_paddle", "recognize", "--build_index", index, "--append"]
    assert subprocess.run(command + ["--img_dir", os.path.join(out, "seed")], env=env, capture_output=True,
                          timeout=300).returncode == 0
    a_log = os.path.join(out, "a.log")
    with open(a_log, "w") as log:
        a = subprocess.Popen(command + ["--label", slow_list], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            for _ in range(600):                             # A has read the index and is embedding
                with open(a_log) as handle:
                    if "building index" in handle.read():
                        break
                time.sleep(0.1)
            b = subprocess.run(command + ["--img_dir", os.path.join(out, "b")], env=env, capture_output=True,
                               text=True, timeout=300)
            assert a.wait(timeout=300) == 0 and b.returncode == 0, (open(a_log).read()[-2000:], b.stderr)
        finally:
            a.kill()
    assert sorted(set(load_index(index).names)) == ["ada", "bob", "seed"]
    assert len(load_index(index)) == 1 + 120 + 1
