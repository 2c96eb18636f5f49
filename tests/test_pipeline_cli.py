"""Command lines of the pipeline: the README demo, one-line errors for bad input, compare, dataset alignment."""
import importlib.util
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import read_image
from arcface_paddle.pipeline.drawing import default_font_path, draw_faces, font_size_for, identity_color, text_color
from arcface_paddle.pipeline.faces import Face
from arcface_paddle.stores.index_format import GalleryIndex


def load_script(repo_root, relative):
    spec = importlib.util.spec_from_file_location(relative.replace("/", "_")[:-3], repo_root / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def recognition_cli(repo_root):
    return load_script(repo_root, "test_recognition.py")


def test_readme_demo_command_prints_names_and_output(repo_root, tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, DEMO_OUTPUT=str(tmp_path / "demo"))
    done = subprocess.run(["bash", str(repo_root / "demo" / "run_demo.sh")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "obama" in done.stdout and "unknown" in done.stdout and "grace_hopper" in done.stdout
    assert str(tmp_path / "demo" / "group.jpg") in done.stdout
    saved = json.loads((tmp_path / "demo" / "group.json").read_text())
    assert sorted(face["name"] for face in saved["faces"]) == ["grace_hopper", "obama", "unknown"]
    assert all(len(face["keypoints"]) == 6 and len(face["box"]) == 4 for face in saved["faces"])


def test_corrupt_image_gives_one_line_error_and_no_output(repo_root, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\x89PNG broken")
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}   # as a user runs it
    done = subprocess.run([sys.executable, str(repo_root / "test_recognition.py"), "--det", "--rec",
                           "--index", str(repo_root / "demo" / "index.bin"), "--input", str(bad),
                           "--output", str(tmp_path / "out")], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {bad}: not a readable image (corrupt or unsupported format)"]
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


def test_unopenable_video_gives_exactly_one_line(repo_root, tmp_path):
    """FFmpeg's own complaint ("moov atom not found") must not appear beside our error."""
    video = tmp_path / "broken.mp4"
    video.write_bytes(b"\x00" * 1000)
    env = {key: value for key, value in os.environ.items() if key != "OPENCV_FFMPEG_LOGLEVEL"}
    done = subprocess.run([sys.executable, str(repo_root / "test_recognition.py"), "--det", "--input", str(video),
                           "--output", str(tmp_path / "out")], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {video}: cannot open video (corrupt or unsupported codec)"]


def test_bad_inputs_are_user_errors(recognition_cli, repo_root, tmp_path):
    index = str(repo_root / "demo" / "index.bin")
    query = str(repo_root / "demo" / "query" / "obama2.jpg")
    empty = tmp_path / "empty"
    empty.mkdir()
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes((repo_root / "demo" / "index.bin").read_bytes()[:500])
    foreign = tmp_path / "foreign.bin"
    GalleryIndex(["x"], np.ones((1, 128)), model_id="0000aaaa0000aaaa").save(str(foreign))
    video = tmp_path / "broken.mp4"
    video.write_bytes(os.urandom(2048))
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    cases = [
        (["--input", str(empty), "--index", index], "no images found"),
        (["--input", query, "--index", str(truncated)], "corrupt or truncated"),
        (["--input", query, "--index", str(foreign)], "0000aaaa0000aaaa"),
        (["--input", str(video), "--index", index], "cannot open video"),
        (["--input", query, "--index", index, "--output", str(blocker / "out")], "not writable"),
        (["--input", str(tmp_path / "missing.jpg"), "--index", index], "not found"),
        (["--build_index", str(tmp_path / "i.bin"), "--img_dir", str(empty)], "no images found"),
        (["--input", query, "--font", str(blocker)], "not a readable TrueType"),
        (["--input", query, "--index", index, "--cdd_num", "0"], "cdd_num .* must be >= 1"),
    ]
    for argv, message in cases:
        with pytest.raises(ToolkitError, match=message):
            recognition_cli.main(argv + ["--output", str(tmp_path / "out")] if "--output" not in argv else argv)


def test_compare_tool(repo_root, faces_dir, tmp_path, capsys):
    compare_cli = load_script(repo_root, "tools/compare.py")
    assert compare_cli.main([str(faces_dir / "obama.jpg"), str(faces_dir / "obama3.jpg"),
                             "--show", str(tmp_path / "pair.png")]) == 0
    printed = capsys.readouterr().out
    assert "same person" in printed and (tmp_path / "pair.png").is_file()
    with pytest.raises(ToolkitError, match="missing.jpg: image file not found"):
        compare_cli.main([str(faces_dir / "obama.jpg"), str(tmp_path / "missing.jpg")])


def test_compare_refuses_a_show_file_that_is_not_an_image(repo_root, faces_dir, tmp_path):
    cmd = [sys.executable, str(repo_root / "tools" / "compare.py"), str(faces_dir / "obama.jpg"),
           str(faces_dir / "biden.jpg"), "--show", str(tmp_path / "pair.xyz")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    from arcface_paddle.core.images import IMAGE_EXTENSIONS
    assert result.stderr.strip() == (f"error: {tmp_path / 'pair.xyz'}: the side-by-side picture needs an image "
                                     f"file name ({', '.join(IMAGE_EXTENSIONS)})")
    assert result.stdout == "" and not list(tmp_path.iterdir())


def test_align_dataset_parallel_resumable_with_report(repo_root, faces_dir, nonfaces_dir, tmp_path):
    from arcface_paddle.pipeline.analyzer import FaceAnalyzer
    from arcface_paddle.pipeline.dataset_alignment import align_dataset
    raw = tmp_path / "raw"
    for identity, files in {"obama": ["obama.jpg", "obama3.jpg"], "cat": ["chelsea.png"]}.items():
        (raw / identity).mkdir(parents=True)
        for name in files:
            source = faces_dir / name if name.startswith("obama") else nonfaces_dir / name
            (raw / identity / name).write_bytes(source.read_bytes())
    (raw / "cat" / "broken.jpg").write_bytes(b"nope")
    aligned = tmp_path / "aligned"
    align_cli = load_script(repo_root, "tools/align_dataset.py")
    assert align_cli.main(["--input", str(raw), "--output", str(aligned), "--workers", "2"]) == 0
    report = json.loads((aligned / "align_report.json").read_text())
    assert report["aligned"] == 2
    assert sorted(item["path"] for item in report["failed"]) == ["cat/broken.jpg", "cat/chelsea.png"]
    crops = [read_image(str(aligned / "obama" / name)) for name in ("obama.jpg", "obama3.jpg")]
    assert all(crop.shape == (112, 112, 3) for crop in crops)
    # The crops are proper aligned faces: the recognizer alone (no detector) calls them the same person.
    recognizer = FaceAnalyzer(det=False)
    first, second = recognizer.embed(crops)
    assert float(first @ second) > 0.6
    again = align_dataset(str(raw), str(aligned), workers=1, progress=False)
    assert again.already_done == 2 and again.aligned == 0 and len(again.failed) == 2


def test_identity_colours_are_stable_across_processes_and_distinct_in_the_demo_gallery(repo_root):
    """The same person gets the same colour in every run (not Python's per-process salted ``hash``), and
    the demo gallery's people get clearly different colours, none of them the unknown grey."""
    names = sorted(path.name for path in (repo_root / "demo" / "gallery").iterdir() if path.is_dir())
    assert names == ["biden", "grace_hopper", "obama"]
    names += ["奥巴马", "unknown"]
    here = {name: list(identity_color(name)) for name in names}
    script = ("import json, sys; from arcface_paddle.pipeline.drawing import identity_color; "
              "print(json.dumps({n: list(identity_color(n)) for n in json.loads(sys.argv[1])}))")
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        result = subprocess.run([sys.executable, "-c", script, json.dumps(names)], capture_output=True, text=True,
                                env=env, timeout=60, check=True)
        assert json.loads(result.stdout) == here, hash_seed
    assert here["unknown"] == [160, 160, 160]
    people = [np.array(here[name]) for name in names if name != "unknown"]
    for i in range(len(people)):
        for j in range(i + 1, len(people)):
            # RGB distance; measured minimum 87 (obama vs biden, two blues), below ~40 they look alike
            assert np.linalg.norm(people[i] - people[j]) > 60, (names[i], names[j])
        assert np.linalg.norm(people[i] - np.array(here["unknown"])) > 60, names[i]


def test_drawing_colours_labels_and_fonts():
    assert text_color((255, 255, 0)) == (0, 0, 0) and text_color((20, 20, 200)) == (255, 255, 255)
    assert font_size_for((0, 0, 400, 400)) > font_size_for((0, 0, 100, 100))
    image = np.zeros((200, 300, 3), np.uint8)
    face = Face(box=(100.0, 80.0, 200.0, 180.0), score=0.9, keypoints=None, name="obama", similarity=0.8)
    drawn = draw_faces(image, [face])
    assert tuple(drawn[130, 100]) == identity_color("obama")     # left edge of the box
    assert drawn[130, 150].max() == 0                            # inside untouched
    assert (drawn[40:80, 100:200] == identity_color("obama")).all(axis=2).any()    # label above the box
    assert image.max() == 0                                      # input not modified
    with pytest.warns(UserWarning, match="no glyphs for '奥巴马'"):
        draw_faces(image, [Face(box=face.box, score=0.9, name="奥巴马", similarity=0.8)])
    with pytest.warns(UserWarning, match="no glyphs for '中文名'"):     # in reading order, not code-point order
        draw_faces(image, [Face(box=face.box, score=0.9, name="中文名", similarity=0.8)])
    serif = os.path.join(os.path.dirname(default_font_path()), "DejaVuSerif.ttf")
    assert not np.array_equal(draw_faces(image, [face], font_path=serif), drawn)    # --font is really used


def test_import_reference_index_from_the_command_line(recognition_cli, repo_root, tmp_path):
    import pickle

    from arcface_paddle.stores.index_format import load_index
    shipped = load_index(str(repo_root / "demo" / "index.bin"))
    reference = tmp_path / "reference_index.bin"
    reference.write_bytes(pickle.dumps({"label": shipped.names, "feature": shipped.features}))
    output = tmp_path / "converted.bin"
    assert recognition_cli.main(["--import_index", str(reference), "--build_index", str(output)]) == 0
    converted = load_index(str(output), expected_model_id=shipped.model_id)
    assert converted.names == shipped.names
    np.testing.assert_allclose(converted.features, shipped.features, atol=1e-6)


def test_chinese_names_render_with_a_cjk_font(recognition_cli, repo_root, faces_dir, tmp_path):
    """--font with a CJK font draws real glyphs for Chinese gallery names, and says nothing about them."""
    from arcface_paddle.pipeline.drawing import load_font

    cjk = str(repo_root / "tests" / "data" / "fonts" / "wqy-microhei-subset.ttf")
    glyphs = {path: [np.asarray(load_font(path, 32).getmask(char)) for char in "奥巴马"]
              for path in (cjk, default_font_path())}
    # DejaVuSans has no CJK glyphs: all three come out as the same replacement box; the CJK font draws three.
    assert all(np.array_equal(glyphs[default_font_path()][0], mask) for mask in glyphs[default_font_path()][1:])
    assert not np.array_equal(glyphs[cjk][0], glyphs[cjk][1]) and not np.array_equal(glyphs[cjk][1], glyphs[cjk][2])

    for name, photo in (("奥巴马", "obama.jpg"), ("拜登", "biden.jpg")):
        (tmp_path / "gallery" / name).mkdir(parents=True)
        (tmp_path / "gallery" / name / photo).write_bytes((faces_dir / photo).read_bytes())
    index = tmp_path / "中文库.bin"
    assert recognition_cli.main(["--build_index", str(index), "--img_dir", str(tmp_path / "gallery")]) == 0
    for font, expected_warnings in ((default_font_path(), ["no glyphs for '奥巴马'"]), (cjk, [])):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert recognition_cli.main(["--index", str(index), "--input", str(faces_dir / "obama3.jpg"),
                                         "--output", str(tmp_path / "out"), "--font", font]) == 0
        glyph_warnings = [str(w.message) for w in caught if "glyphs" in str(w.message)]
        assert len(glyph_warnings) == len(expected_warnings)
        assert all(text in message for text, message in zip(expected_warnings, glyph_warnings))
    saved = json.loads((tmp_path / "out" / "obama3.json").read_text(encoding="utf-8"))
    assert [face["name"] for face in saved["faces"]] == ["奥巴马"]
    assert read_image(str(tmp_path / "out" / "obama3.jpg")).shape == read_image(str(faces_dir / "obama3.jpg")).shape
