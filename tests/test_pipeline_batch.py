"""Batched detection + recognition equals one-at-a-time; a folder streams through it with bounded memory."""
import json
import shutil
import threading
import time

import numpy as np
import pytest

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import read_image
from arcface_paddle.pipeline.analyzer import FaceAnalyzer
from arcface_paddle.pipeline.runner import run_on_input
from arcface_paddle.pipeline.streaming import OrderedWorker, ordered_map
from blazeface_paddle.inference.predictor import DetectorPredictor


@pytest.fixture(scope="module")
def analyzer(repo_root):
    # keypoint refinement on, so the batched refinement path is compared too
    return FaceAnalyzer(index=str(repo_root / "demo" / "index.bin"), batch_size=4, refine_keypoints=True)


@pytest.fixture(scope="module")
def photos(repo_root, faces_dir, nonfaces_dir):
    """Real photos of different sizes: six portraits, a group of three, two without a face."""
    return (sorted(faces_dir.iterdir()) + [repo_root / "demo" / "query" / "group.jpg"]
            + sorted(nonfaces_dir.iterdir()))


@pytest.mark.parametrize("variant", ["full_range", "short_range"])
def test_detector_batches_equal_single_images(repo_root, photos, variant):
    detector = DetectorPredictor(repo_root / "inference_model" / f"blazeface_{variant}")
    images = [read_image(str(path)) for path in photos]
    for batch_size in (3, 16):
        batched = detector.detect_batch(images, batch_size=batch_size)
        for image, found in zip(images, batched):
            single = detector.detect(image)
            assert len(found) == len(single)
            for a, b in zip(found, single):
                np.testing.assert_allclose(a.box, b.box, atol=1e-3)
                np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-3)
                assert abs(a.score - b.score) < 1e-5
    # tiles of several images share batches too
    tiled = detector.detect_batch(images[:3], tile_size=600)
    assert [len(f) for f in tiled] == [len(detector.detect(image, tile_size=600)) for image in images[:3]]
    with pytest.raises(ToolkitError, match="batch_size must be >= 1"):
        detector.detect_batch(images, batch_size=0)


def test_analyze_batch_and_stream_equal_one_at_a_time(analyzer, photos):
    images = [read_image(str(path)) for path in photos]
    singles = [analyzer.analyze(image) for image in images]
    streamed = list(analyzer.analyze_stream(iter(str(path) for path in photos)))     # paths, from an iterator
    for result in (analyzer.analyze_batch(images), streamed):
        assert len(result) == len(singles)
        for faces, reference in zip(result, singles):
            assert [face.name for face in faces] == [face.name for face in reference]
            for face, expected in zip(faces, reference):
                np.testing.assert_allclose(face.box, expected.box, atol=1e-3)
                np.testing.assert_allclose(face.embedding, expected.embedding, atol=1e-5)
                assert abs(face.similarity - expected.similarity) < 1e-5
    assert sum(len(faces) for faces in singles) == 9          # 6 portraits + 3 in the group, none in the others
    assert analyzer.analyze_batch([]) == []
    # detection without refinement, then refining only chosen faces (what the video tracker does) = refined all along
    plain = analyzer.detect_batch(images, refine=False)
    analyzer.refine_faces(images, plain)
    for faces, reference in zip(plain, singles):
        np.testing.assert_allclose([face.keypoints for face in faces], [face.keypoints for face in reference],
                                   atol=1e-3)


def test_folder_streamed_in_batches_writes_what_one_at_a_time_finds(analyzer, photos, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for path in photos:
        shutil.copy(path, folder / path.name)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    report = run_on_input(analyzer, str(folder), str(tmp_path / "out"), progress=False)
    assert [path.split("/")[-1] for path, _ in report.failed] == ["broken.jpg"]
    assert len(report.results) == len(photos)
    for path in photos:
        saved = json.loads((tmp_path / "out" / (path.stem + ".json")).read_text())
        reference = analyzer.analyze(str(path))
        assert [face["name"] for face in saved["faces"]] == [face.name for face in reference]
        for face, expected in zip(saved["faces"], reference):
            np.testing.assert_allclose(face["box"], expected.box, atol=0.01)
            assert face["similarity"] == pytest.approx(expected.similarity, abs=1e-4)
        drawn = tmp_path / "out" / (path.stem + (path.suffix if path.suffix in (".jpg", ".png") else ".png"))
        assert read_image(str(drawn)).shape == read_image(str(path)).shape


def test_ordered_map_keeps_order_and_a_bounded_number_in_flight():
    pulled, lock = [0], threading.Lock()

    def source():
        for item in range(200):
            with lock:
                pulled[0] += 1
            yield item

    def slow_square(value):
        time.sleep(0.001 * (value % 3))
        return value * value

    seen = []
    for result in ordered_map(slow_square, source(), workers=3, depth=5):
        seen.append(result)
        assert pulled[0] - len(seen) <= 5                   # never more than `depth` items taken but not returned
    assert seen == [value * value for value in range(200)]
    with OrderedWorker(depth=2) as worker:
        done = []
        for value in range(20):
            done += worker.submit(slow_square, value)
            assert len(done) >= value - 2
        done += worker.drain()
    assert done == [value * value for value in range(20)]


@pytest.mark.parametrize("det_engine", ["openvino", "onednn"])
def test_a_dropped_clone_leaves_the_original_working(repo_root, det_engine):
    """Paddle 3.3.1 frees the weights a clone shares with its original when the clone is destroyed; the
    original must keep answering (it failed with "Tensor holds no memory" before)."""
    import gc

    photo = str(repo_root / "tests" / "data" / "faces" / "obama.jpg")
    original = FaceAnalyzer(index=str(repo_root / "demo" / "index.bin"), det_engine=det_engine)
    expected = [(face.name, face.box) for face in original.analyze(photo)]
    twin = original.clone()
    assert [(face.name, face.box) for face in twin.analyze(photo)] == expected
    del twin
    gc.collect()
    assert [(face.name, face.box) for face in original.analyze(photo)] == expected
