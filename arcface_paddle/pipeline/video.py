"""Videos, cameras and streams through a FaceAnalyzer: tracked faces, drawn video + JSON, a clean Ctrl-C stop.

Frames are decoded ahead on a thread, detected ``analyzer.batch_size`` at a time (a live source takes the
frames that are ready, so it does not wait to fill a batch), tracked and named by
:class:`~arcface_paddle.pipeline.tracking.FaceTracker` (recognising only new, due or weak tracks), and drawn,
encoded and written behind on a writer thread.  The JSON is written frame by frame, so memory stays flat on a
camera left running.  Ctrl-C (SIGINT) stops reading; the frames read so far are finished and the video and
JSON are finalised (``"interrupted": true``).  A frame that cannot be decoded is skipped and listed in
``"corrupt_frames"``.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import os
import re
import signal
import threading
import time
import warnings
from typing import Optional

from tqdm import tqdm

from arcface_paddle.core.safe_io import atomic_write
from arcface_paddle.pipeline.media_io import VideoReader, video_writer
from arcface_paddle.pipeline.results import RunResult
from arcface_paddle.pipeline.streaming import OrderedWorker, Prefetcher
from arcface_paddle.pipeline.tracking import (
    DEFAULT_REC_EVERY,
    DEFAULT_TRACK_BUFFER,
    DEFAULT_WEAK_MARGIN,
    FaceTracker,
    check_tracking_options,
)

POLL_SECONDS = 0.1       # how often a wait for frames looks for a stop request


@dataclasses.dataclass
class VideoOptions:
    """How a video is analysed (defaults measured: docs/throughput.md)."""
    track: bool = True                          # False: every face of every frame recognised on its own
    rec_every: int = DEFAULT_REC_EVERY
    weak_margin: float = DEFAULT_WEAK_MARGIN
    track_buffer: int = DEFAULT_TRACK_BUFFER

    def __post_init__(self):
        check_tracking_options(self.rec_every, self.weak_margin, self.track_buffer)


@contextlib.contextmanager
def stop_on_sigint():
    """Yield an Event set by the first Ctrl-C (SIGINT); a second one interrupts as usual.  Outside the main
    thread (where signal handlers cannot be set) the event is only set by the caller."""
    stop = threading.Event()

    def request_stop(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    try:
        previous = signal.signal(signal.SIGINT, request_stop)
    except ValueError:             # not the main thread
        previous = None
    try:
        yield stop
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def output_stem(source: str) -> str:
    """``clip`` for clip.mp4, ``camera0`` for camera 0, ``stream_<host>`` for a URL."""
    if source.isdigit():
        return f"camera{source}"
    match = re.match(r"^[a-z]+://(?:[^@/]*@)?([^/:?#]+)", source, re.IGNORECASE)
    if match:
        return "stream_" + re.sub(r"[^A-Za-z0-9_.-]", "_", match.group(1))
    return os.path.splitext(os.path.basename(source))[0]


def redact(source: str) -> str:
    """The source without a password (rtsp://user:secret@host → rtsp://user:***@host), for the JSON."""
    return re.sub(r"^([a-z]+://[^:@/]*):[^@/]*@", r"\1:***@", source, flags=re.IGNORECASE)


class FramesJson:
    """The video's JSON written frame by frame (header, one line per frame, footer), renamed into place at the
    end; fields written after the frames: ``corrupt_frames``, ``interrupted``, ``tracks``."""

    def __init__(self, handle, header: dict):
        self._handle, self._first = handle, True
        handle.write(json.dumps(header, ensure_ascii=False)[:-1] + ', "frames": [\n')

    def add(self, entry: dict) -> None:
        self._handle.write(("" if self._first else ",\n") + json.dumps(entry, ensure_ascii=False))
        self._first = False

    def finish(self, footer: dict) -> None:
        self._handle.write("\n], " + json.dumps(footer, ensure_ascii=False)[1:] + "\n")


def _next_frames(prefetch: Prefetcher, size: int, live: bool, stop: threading.Event) -> list:
    """Up to ``size`` (number, frame) pairs; a live source returns what is ready once it has one."""
    frames = []
    try:
        while len(frames) < size and not stop.is_set():
            if live and frames:
                item = prefetch.get_nowait()
                if item is None:
                    break
            else:
                item = prefetch.get(timeout=POLL_SECONDS)
                if item is None:
                    continue
            frames.append(item)
    except StopIteration:
        pass
    return frames


def analyze_frames(analyzer, frames: list, tracker: Optional[FaceTracker], numbers: list) -> tuple[list, int]:
    """Faces of each frame and how many faces were embedded: per frame (no tracker) or tracked."""
    if tracker is None:
        faces_per_frame = analyzer.analyze_batch(frames)
        return faces_per_frame, sum(map(len, faces_per_frame)) if analyzer.recognizer is not None else 0
    faces_per_frame = analyzer.detect_batch(frames, refine=False)     # refined below, for the faces recognised
    can_name = analyzer.recognizer is not None and analyzer.index is not None
    todo = []
    for faces, number in zip(faces_per_frame, numbers):
        tracker.assign(faces, number)
        todo.append([face for face in faces if tracker.needs_recognition(face, number)] if can_name else [])
    if any(todo):
        analyzer.refine_faces(frames, todo)
        analyzer.embed_faces(frames, todo)
        analyzer.match_faces([face for faces in todo for face in faces])
    for faces, number, recognised in zip(faces_per_frame, numbers, todo):
        tracker.label(faces, number, recognised=recognised)
    return faces_per_frame, sum(map(len, todo))


def process_video(analyzer, source: str, output_dir: str, options: Optional[VideoOptions] = None,
                  progress: bool = True) -> RunResult:
    """Analyse a video file, camera index or stream URL into ``STEM.<ext>`` (drawn; .mp4 for live sources)
    and ``STEM.json``."""
    options = options or VideoOptions()
    reader = VideoReader(source)
    extension = ".mp4" if reader.live else os.path.splitext(source)[1]
    drawn_path = os.path.join(output_dir, output_stem(source) + extension)
    json_path = os.path.join(output_dir, output_stem(source) + ".json")
    tracker = (FaceTracker(analyzer.rec_thresh, options.rec_every, options.weak_margin, options.track_buffer)
               if options.track else None)
    header = {"input": redact(source), "fps": reader.fps, "frame_size": list(reader.size_wh),
              "tracking": dataclasses.asdict(options) if options.track else None}
    names, counts = collections.Counter(), {"frames": 0, "faces": 0, "recognitions": 0}
    prefetch = Prefetcher(reader.numbered(), depth=2 * analyzer.batch_size)
    started = time.perf_counter()
    try:
        with stop_on_sigint() as stop, video_writer(drawn_path, reader.fps, reader.size_wh) as write, \
                atomic_write(json_path, "w") as handle, OrderedWorker(depth=analyzer.batch_size) as drawer, \
                tqdm(total=reader.frame_count or None, desc=os.path.basename(drawn_path), unit="frame",
                     disable=not progress) as bar:
            frames_json = FramesJson(handle, header)

            def draw_and_write(number, frame, faces):
                write(analyzer.draw(frame, faces))
                frames_json.add({"frame": number, "faces": [
                    {**face.to_dict(), "track_id": face.track_id} if tracker else face.to_dict() for face in faces]})

            while batch := _next_frames(prefetch, analyzer.batch_size, reader.live, stop):
                numbers, frames = [number for number, _ in batch], [frame for _, frame in batch]
                faces_per_frame, embedded = analyze_frames(analyzer, frames, tracker, numbers)
                counts["recognitions"] += embedded
                for number, frame, faces in zip(numbers, frames, faces_per_frame):
                    for face in faces:
                        face.embedding = None
                    names.update(face.name for face in faces if face.name is not None)
                    counts["faces"] += len(faces)
                    drawer.submit(draw_and_write, number, frame, faces)
                counts["frames"] += len(batch)
                bar.update(len(batch))
            drawer.drain()
            prefetch.close()
            frames_json.finish({"frames_processed": counts["frames"], "corrupt_frames": reader.corrupt_frames,
                                "interrupted": stop.is_set(), "recognitions": counts["recognitions"],
                                "tracks": tracker.summary() if tracker else None})
            interrupted = stop.is_set()
        if not (interrupted or reader.live) and 0 < counts["frames"] + len(reader.corrupt_frames) < reader.frame_count:
            warnings.warn(f"{source}: only {counts['frames']} of the {reader.frame_count} frames its container "
                          f"declares could be decoded (damaged or cut short?); results cover those "
                          f"{counts['frames']}", stacklevel=2)
    finally:
        prefetch.close()
        reader.close()
    return RunResult(source, drawn_path, json_path, faces=[], frames=counts["frames"],
                     corrupt_frames=list(reader.corrupt_frames), interrupted=interrupted,
                     recognitions=counts["recognitions"], seconds=time.perf_counter() - started,
                     names=names, face_count=counts["faces"])
