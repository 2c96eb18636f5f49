"""Video with face tracking: steady names on a video filmed over the real portraits, corrupt frames reported,
Ctrl-C finalises the output, a stream URL served over HTTP on 127.0.0.1."""
import collections
import functools
import http.server
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from arcface_paddle.pipeline.analyzer import FaceAnalyzer
from arcface_paddle.pipeline.media_io import VideoReader, video_writer
from arcface_paddle.pipeline.runner import run_on_input
from arcface_paddle.pipeline.video import VideoOptions, output_stem, process_video, redact


@pytest.fixture(scope="module")
def scene(repo_root):
    spec = importlib.util.spec_from_file_location("make_tracking_video",
                                                  repo_root / "tests" / "data" / "make_tracking_video.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def analyzer(repo_root):
    return FaceAnalyzer(index=str(repo_root / "demo" / "index.bin"))


@pytest.fixture(scope="module")
def scene_video(scene, tmp_path_factory):
    path = tmp_path_factory.mktemp("scene") / "scene.avi"
    scene.make_scene_video(str(path))
    return path


def centre(box):
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def test_tracked_names_are_the_per_frame_majority_and_never_switch(analyzer, scene, scene_video, tmp_path):
    # Reference: every frame recognised on its own, grouped by the portrait each face lies on.
    per_frame = [analyzer.analyze(frame) for frame in VideoReader(str(scene_video))]
    votes = collections.defaultdict(collections.Counter)
    for number, faces in enumerate(per_frame):
        for face in faces:
            votes[scene.person_at(number, *centre(face.box))][face.name] += 1
    majority = {person: counter.most_common(1)[0][0] for person, counter in votes.items()}
    # the video is what it claims: four people, recognised right by most frames; obama2 leaves and comes back
    assert majority == {"obama": "obama", "unknown": "unknown", "grace_hopper": "grace_hopper", "biden": "biden"}
    obama_frames = [n for n, faces in enumerate(per_frame)
                    if any(scene.person_at(n, *centre(face.box)) == "obama" for face in faces)]
    assert obama_frames[0] == 0 and obama_frames[-1] == len(per_frame) - 1
    assert len(obama_frames) < len(per_frame) - 5           # out of view in the middle

    result = process_video(analyzer, str(scene_video), str(tmp_path), VideoOptions(), progress=False)
    saved = json.loads(open(result.json).read())
    assert result.frames == len(saved["frames"]) == len(per_frame) and saved["corrupt_frames"] == []
    names_of_track = collections.defaultdict(set)
    people_of_track = collections.defaultdict(set)
    for number, (entry, reference) in enumerate(zip(saved["frames"], per_frame)):
        assert entry["frame"] == number
        # the same faces as per-frame detection (same detector, batched), each with a track id key
        assert len(entry["faces"]) == len(reference)
        np.testing.assert_allclose([face["box"] for face in entry["faces"]],
                                   [np.round(face.box, 2) for face in reference], atol=0.02)
        for face in entry["faces"]:
            person = scene.person_at(number, *centre(face["box"]))
            assert face["name"] == majority[person], (number, face, person)
            assert "track_id" in face
            if face["track_id"] is not None:
                names_of_track[face["track_id"]].add(face["name"])
                people_of_track[face["track_id"]].add(person)
    assert all(len(names) == 1 for names in names_of_track.values()), names_of_track
    assert all(len(people) == 1 for people in people_of_track.values()), people_of_track
    # the stranger is never named, and tracking saved most of the recognitions
    assert {next(iter(names)) for track, names in names_of_track.items()
            if people_of_track[track] == {"unknown"}} == {"unknown"}
    assert result.recognitions < result.face_count / 2
    assert saved["tracks"] and all(track["recognitions"] >= 1 for track in saved["tracks"].values())
    # the drawn video has every frame
    assert sum(1 for _ in VideoReader(result.output)) == len(per_frame)


def test_untracked_video_recognises_every_face(analyzer, scene_video, tmp_path):
    result = process_video(analyzer, str(scene_video), str(tmp_path), VideoOptions(track=False), progress=False)
    saved = json.loads(open(result.json).read())
    assert result.recognitions == result.face_count == sum(len(entry["faces"]) for entry in saved["frames"])
    assert all("track_id" not in face for entry in saved["frames"] for face in entry["faces"])


def write_clip(path, frames, fps=5):
    with video_writer(str(path), fps, (frames[0].shape[1], frames[0].shape[0])) as write:
        for frame in frames:
            write(frame)


def test_corrupt_frame_mid_video_is_counted_and_reported(analyzer, scene, repo_root, tmp_path, capsys):
    clip = tmp_path / "clip.avi"
    write_clip(clip, scene.scene_frames()[:12])
    data = bytearray(clip.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i:i + 3] == b"\xff\xd8\xff"]     # one JPEG per frame
    assert len(starts) == 12
    data[starts[5]:starts[6] - 8] = bytes(starts[6] - 8 - starts[5])                 # frame 5 zeroed
    clip.write_bytes(bytes(data))

    result = process_video(analyzer, str(clip), str(tmp_path / "out"), progress=False)
    saved = json.loads(open(result.json).read())
    assert result.corrupt_frames == saved["corrupt_frames"] == [5]
    assert [entry["frame"] for entry in saved["frames"]] == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]
    assert result.frames == saved["frames_processed"] == 11           # the frames after it were not dropped
    assert sum(1 for _ in VideoReader(result.output)) == 11

    from arcface_paddle.cli.recognize import main
    assert main(["--index", str(repo_root / "demo" / "index.bin"), "--input", str(clip),
                 "--output", str(tmp_path / "cli")]) == 0
    assert (f"warning: {clip}: 1 corrupt frame(s) could not be decoded and were skipped (frame 5)"
            in capsys.readouterr().err)


def test_ctrl_c_stops_a_long_video_and_finalises_the_output(repo_root, scene, tmp_path):
    frames = [cv2.resize(frame, (160, 120)) for frame in scene.scene_frames()]
    long_clip = tmp_path / "long.avi"
    write_clip(long_clip, frames * 120, fps=25)                           # 5400 frames: minutes of work
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "arcface_paddle", "recognize", "--index",
                                str(repo_root / "demo" / "index.bin"), "--input", str(long_clip),
                                "--output", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not (out.is_dir() and any(name.startswith(".long.json.") for name in os.listdir(out))):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.2)
        time.sleep(2.0)                                                   # some frames processed
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr                              # a file cut short (a live source: 0)
    assert "stopped by Ctrl-C after" in stderr and "Traceback" not in stderr
    saved = json.loads((out / "long.json").read_text())
    assert saved["interrupted"] is True
    assert 0 < saved["frames_processed"] == len(saved["frames"]) < len(frames) * 120
    assert sum(1 for _ in VideoReader(str(out / "long.avi"))) == saved["frames_processed"]
    assert sorted(os.listdir(out)) == ["long.avi", "long.json"]           # no temporary files left


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_stream_url_is_read_live(analyzer, scene_video, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(QuietHandler, directory=str(scene_video.parent)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://user:secret@127.0.0.1:{server.server_address[1]}/{scene_video.name}"
        report = run_on_input(analyzer, url, str(tmp_path), progress=False)
    finally:
        server.shutdown()
        server.server_close()
    result = report.results[0]
    assert os.path.basename(result.output) == "stream_127.0.0.1.mp4" and not result.interrupted
    saved = json.loads(open(result.json).read())
    assert saved["input"] == redact(url) and "secret" not in saved["input"]
    assert result.frames == len(saved["frames"]) == sum(1 for _ in VideoReader(str(scene_video)))
    assert {"obama", "unknown", "grace_hopper", "biden"} == set(result.names)
    assert sum(1 for _ in VideoReader(result.output)) == result.frames


def test_source_names():
    assert output_stem("0") == "camera0" and output_stem("/data/clip.mp4") == "clip"
    assert output_stem("rtsp://admin:pw@10.0.0.7:554/stream1") == "stream_10.0.0.7"
    assert redact("rtsp://admin:pw@10.0.0.7:554/s") == "rtsp://admin:***@10.0.0.7:554/s"
    assert redact("http://10.0.0.7/video.mjpg") == "http://10.0.0.7/video.mjpg"


def test_bad_video_options_and_a_missing_camera_are_one_line_errors(repo_root, capfd):
    from arcface_paddle.cli.recognize import main
    from arcface_paddle.core.errors import ToolkitError
    query = str(repo_root / "demo" / "query" / "obama2.jpg")
    for argv, message in ((["--input", query, "--rec_every", "0"], "rec_every .* must be >= 1"),
                          (["--input", query, "--batch_size", "0"], "batch_size .* must be >= 1"),
                          (["--input", query, "--weak_margin", "2"], "weak_margin must be in"),
                          (["--input", "97"], "97: cannot open camera or stream")):
        with pytest.raises(ToolkitError, match=message):
            main(argv + ["--index", str(repo_root / "demo" / "index.bin")])
    assert "VIDEOIO" not in capfd.readouterr().err       # OpenCV's own complaint about the camera is silenced
