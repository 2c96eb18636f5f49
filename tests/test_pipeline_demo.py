"""The det+rec pipeline on real photos with the shipped models: demo names, gallery building, compare, video."""
import json
import os
import shutil
import warnings

import numpy as np
import pytest

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import read_image
from arcface_paddle.pipeline.analyzer import FaceAnalyzer
from arcface_paddle.pipeline.media_io import VideoReader, video_writer
from arcface_paddle.pipeline.runner import run_on_input
from arcface_paddle.stores.index_format import GalleryIndex, load_index
from arcface_paddle.stores.vote import DEFAULT_REC_THRESHOLD, UNKNOWN


@pytest.fixture(scope="module")
def analyzer(repo_root):
    return FaceAnalyzer(index=str(repo_root / "demo" / "index.bin"))


def names_left_to_right(faces):
    return [face.name for face in sorted(faces, key=lambda face: face.box[0])]


def test_demo_group_photo_names_and_stranger(analyzer, repo_root):
    faces = analyzer.analyze(str(repo_root / "demo" / "query" / "group.jpg"))
    # obama2 (not in the gallery) | Eileen Collins (nobody in the gallery) | Grace Hopper
    assert names_left_to_right(faces) == ["obama", UNKNOWN, "grace_hopper"]
    by_name = {face.name: face for face in faces}
    assert by_name["obama"].similarity > DEFAULT_REC_THRESHOLD > by_name[UNKNOWN].similarity
    for face in faces:
        assert face.keypoints.shape == (6, 2) and 0 < face.score <= 1
        np.testing.assert_allclose(np.linalg.norm(face.embedding), 1.0, atol=1e-5)


def test_query_photo_outside_the_gallery_is_recognised(analyzer, repo_root):
    faces = analyzer.analyze(read_image(str(repo_root / "demo" / "query" / "obama2.jpg")))
    assert [face.name for face in faces] == ["obama"]


def test_alignment_beats_plain_crops(analyzer, faces_dir):
    """Aligned crops give a clearly higher same-person similarity than unaligned box crops."""
    def same_person_similarity(align):
        analyzer.align = align
        try:
            result = analyzer.compare(str(faces_dir / "obama.jpg"), str(faces_dir / "obama3.jpg"))
        finally:
            analyzer.align = True
        return result.similarity
    assert same_person_similarity(True) > same_person_similarity(False) + 0.05


def test_shipped_demo_index_is_reproducible(analyzer, repo_root, tmp_path):
    output = tmp_path / "index.bin"
    report = analyzer.build_index(img_dir=str(repo_root / "demo" / "gallery"), output=str(output), progress=False)
    shipped = load_index(str(repo_root / "demo" / "index.bin"), expected_model_id=analyzer.model_id)
    rebuilt = load_index(str(output))
    assert report.added == 4 and not report.skipped
    assert rebuilt.names == shipped.names == ["biden", "grace_hopper", "obama", "obama"]
    np.testing.assert_allclose(rebuilt.features, shipped.features, atol=2e-3)


def test_label_file_build_skips_faceless_and_broken_images_then_appends(analyzer, faces_dir, nonfaces_dir,
                                                                         tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    label = tmp_path / "labels.txt"
    label.write_text(f"{faces_dir / 'biden.jpg'}\tJoe Biden\n{nonfaces_dir / 'chelsea.png'}\tcat\n"
                     f"broken.jpg\tnobody\n", encoding="utf-8")
    output = tmp_path / "index.bin"
    report = analyzer.build_index(label_file=str(label), output=str(output), progress=False)
    assert report.added == 1 and len(report.index) == 1
    skipped = dict(report.skipped)
    assert skipped[str(nonfaces_dir / "chelsea.png")].startswith("no face found")
    assert "not a readable image" in skipped[str(tmp_path / "broken.jpg")]
    label.write_text(f"{faces_dir / 'astronaut.png'}\t柯林斯\n", encoding="utf-8")
    appended = analyzer.build_index(label_file=str(label), output=str(output), append=True, progress=False)
    assert load_index(str(output)).names == ["Joe Biden", "柯林斯"] and appended.added == 1
    # Nothing usable at all: a clear error, and the existing index is left as it was.
    label.write_text(f"{nonfaces_dir / 'coffee.png'}\tcup\n", encoding="utf-8")
    with pytest.raises(ToolkitError, match="no face found in any"):
        analyzer.build_index(label_file=str(label), output=str(tmp_path / "new.bin"), progress=False)
    assert not (tmp_path / "new.bin").exists()


def test_compare_same_and_different_people(analyzer, faces_dir, nonfaces_dir, tmp_path):
    from arcface_paddle.pipeline.photo_compare import compare_images
    same = compare_images(str(faces_dir / "obama.jpg"), str(faces_dir / "obama3.jpg"), analyzer=analyzer,
                          show=str(tmp_path / "pair.png"))
    different = analyzer.compare(str(faces_dir / "obama.jpg"), str(faces_dir / "biden.jpg"))
    assert same.same_person and not different.same_person
    assert same.similarity > 0.6 and different.similarity < 0.3
    assert same.distance == pytest.approx(np.sqrt(2 - 2 * same.similarity))
    assert read_image(str(tmp_path / "pair.png")).shape == (224 + 56, 448, 3)
    with pytest.raises(ToolkitError, match="coffee.png: no face found"):
        analyzer.compare(str(faces_dir / "obama.jpg"), str(nonfaces_dir / "coffee.png"))


def test_detection_only_and_recognition_only_modes(analyzer, repo_root, faces_dir):
    detector_only = FaceAnalyzer(rec=False)
    faces = detector_only.analyze(str(faces_dir / "grace_hopper.jpg"))
    assert len(faces) == 1 and faces[0].name is None and faces[0].embedding is None
    # --rec alone: the whole image is one (already aligned) face.
    _, crop = analyzer.embed_largest_face(str(faces_dir / "obama3.jpg"))
    recognizer_only = FaceAnalyzer(det=False, index=analyzer.index)
    whole = recognizer_only.analyze(crop)
    assert len(whole) == 1 and whole[0].name == "obama" and whole[0].box == (0.0, 0.0, 112.0, 112.0)


def test_gallery_records_how_faces_were_cropped(analyzer, faces_dir, repo_root, tmp_path):
    label = tmp_path / "labels.txt"
    label.write_text(f"{faces_dir / 'biden.jpg'}\tbiden\n", encoding="utf-8")
    output = tmp_path / "index.bin"
    assert analyzer.build_index(label_file=str(label), output=str(output), progress=False).index.crop_mode == "aligned"
    before = output.read_bytes()
    analyzer.align = False
    try:
        assert analyzer.crop_mode == "box"
        # One gallery holds one kind of crop: appending box crops to aligned ones is refused, the file kept.
        with pytest.raises(ToolkitError, match=r"index\.bin: gallery holds 'aligned' face crops, but these would "
                                               r"be 'box' \(--no-align\)"):
            analyzer.build_index(label_file=str(label), output=str(output), append=True, progress=False)
        assert output.read_bytes() == before
        # Querying an aligned gallery with box crops works but says why scores will be low.
        with pytest.warns(UserWarning, match=r"gallery holds 'aligned' face crops but queries are cut 'box'"):
            analyzer.set_index(str(output))
    finally:
        analyzer.align = True
    box_gallery = GalleryIndex(["biden"], np.ones((1, 128)), model_id=analyzer.model_id, crop_mode="box")
    box_gallery.save(str(tmp_path / "box.bin"))
    assert load_index(str(tmp_path / "box.bin")).crop_mode == "box"
    with pytest.warns(UserWarning, match="queries are cut 'aligned'"):
        analyzer.set_index(str(tmp_path / "box.bin"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # whole-image queries are the caller's own crops: no warning
        FaceAnalyzer(det=False, index=str(tmp_path / "box.bin"))
    analyzer.set_index(str(repo_root / "demo" / "index.bin"))     # the module's analyzer serves later tests


def test_other_model_gallery_is_refused(analyzer, tmp_path):
    other = GalleryIndex(["x"], np.ones((1, 128)), model_id="0123456789abcdef")
    other.save(str(tmp_path / "other.bin"))
    with pytest.raises(ToolkitError, match="0123456789abcdef.*" + analyzer.model_id):
        analyzer.set_index(str(tmp_path / "other.bin"))


def test_video_frames_are_processed_and_written_back(analyzer, repo_root, tmp_path):
    frame = read_image(str(repo_root / "demo" / "query" / "group.jpg"))[::2, ::2].copy()
    source = tmp_path / "clip.avi"
    with video_writer(str(source), 5, (frame.shape[1], frame.shape[0])) as write:
        for shift in range(4):
            write(np.roll(frame, 4 * shift, axis=1))
    report = run_on_input(analyzer, str(source), str(tmp_path / "out"), progress=False)
    result = report.results[0]
    assert os.path.basename(result.output) == "clip.avi"
    assert sum(1 for _ in VideoReader(result.output)) == 4
    frames = json.loads(open(result.json).read())["frames"]
    assert len(frames) == 4
    for entry in frames:
        assert sorted(face["name"] for face in entry["faces"]) == sorted(["obama", UNKNOWN, "grace_hopper"])


def test_folder_batch_continues_past_a_bad_file(analyzer, repo_root, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(repo_root / "demo" / "query" / "obama2.jpg", folder / "a.jpg")
    (folder / "b.jpg").write_bytes(b"garbage")
    report = run_on_input(analyzer, str(folder), str(tmp_path / "out"), progress=False)
    assert [os.path.basename(r.input) for r in report.results] == ["a.jpg"]
    assert [os.path.basename(path) for path, _ in report.failed] == ["b.jpg"]
    saved = json.loads((tmp_path / "out" / "a.json").read_text())
    assert [face["name"] for face in saved["faces"]] == ["obama"]
    assert read_image(str(tmp_path / "out" / "a.jpg")).shape == read_image(str(folder / "a.jpg")).shape
