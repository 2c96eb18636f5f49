"""Reading and writing the pipeline's media: images, folders of images, videos, JSON results.

Every reader turns a bad file into a one-line :class:`ToolkitError` naming it; every writer goes through a
temporary file and a rename so an interrupted run leaves no half-written output.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from typing import Iterator

import cv2
import numpy as np

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import encode_image, from_opencv
from arcface_paddle.core.safe_io import atomic_save_bytes, atomic_write

# FFmpeg (inside OpenCV) prints its own complaints about a broken file ("moov atom not found") to stderr,
# next to our one-line error; OpenCV reads this level when it first opens a video. -8 = AV_LOG_QUIET.
FFMPEG_LOG_LEVEL_ENV, FFMPEG_QUIET = "OPENCV_FFMPEG_LOGLEVEL", "-8"
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv")
_FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mov": "mp4v", ".mkv": "MJPG"}
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
MAX_BAD_READS = 25     # consecutive failed reads that end a video (a corrupt frame is one failed read)
os.environ.setdefault(FFMPEG_LOG_LEVEL_ENV, FFMPEG_QUIET)     # before any video is opened, read or written


def is_video_path(path: str) -> bool:
    return path.lower().endswith(VIDEO_EXTENSIONS)


def is_live_source(source: str) -> bool:
    """A camera index (``0``) or a stream URL OpenCV opens (RTSP, HTTP MJPEG, ...)."""
    return str(source).isdigit() or str(source).lower().startswith(STREAM_SCHEMES)


def write_image(path: str, image_rgb: np.ndarray) -> None:
    """Encode by the file extension and write atomically."""
    extension = os.path.splitext(path)[1].lower() or ".jpg"
    atomic_save_bytes(path, encode_image(image_rgb, extension, source=path))


def write_json(path: str, payload) -> None:
    with atomic_write(path, "w") as handle:
        json.dump(payload, handle, indent=2, ensure_ascii=False)
        handle.write("\n")


class VideoReader:
    """Frames of a video file, camera index or stream URL as RGB uint8, with its fps and frame count.

    A frame that fails to decode in the middle of a video is skipped and its number appended to
    ``corrupt_frames`` (frame numbers count it, so they stay the container's); the video ends after
    ``MAX_BAD_READS`` failed reads in a row (at the end of a file they return at once).
    """

    def __init__(self, path: str):
        self.live = is_live_source(path)
        if not self.live and not os.path.isfile(path):
            raise ToolkitError(f"{path}: video file not found")
        self.path = path
        self.corrupt_frames: list[int] = []
        os.environ.setdefault(FFMPEG_LOG_LEVEL_ENV, FFMPEG_QUIET)
        # OpenCV logs its own warnings for a missing camera ("can't open camera by index") beside our error
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            self._capture = cv2.VideoCapture(int(path) if str(path).isdigit() else path)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not self._capture.isOpened():
            what = "camera or stream" if self.live else "video (corrupt or unsupported codec)"
            raise ToolkitError(f"{path}: cannot open {what}")
        fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        self.fps = fps if 0.0 < fps <= 240.0 else 25.0       # streams may report 0 or a 90 kHz clock
        self.frame_count = max(0, int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT)))
        ok, first = self._capture.read()
        if not ok:
            self._capture.release()
            raise ToolkitError(f"{path}: video has no readable frames")
        self._first = first
        self.size_wh = (int(first.shape[1]), int(first.shape[0]))

    def close(self) -> None:
        self._capture.release()

    def __iter__(self) -> Iterator[np.ndarray]:
        return (frame for _, frame in self.numbered())

    def numbered(self) -> Iterator[tuple[int, np.ndarray]]:
        """(frame number, frame) pairs; numbers count skipped corrupt frames."""
        frame, number, failed = self._first, 0, []
        while frame is not None:
            yield number, from_opencv(frame, source=self.path)
            frame = None
            while frame is None and len(failed) < MAX_BAD_READS:
                number += 1
                ok, frame = self._capture.read()
                if not ok:
                    failed.append(number)
                    frame = None
            if frame is not None:            # failed reads followed by a good one: corrupt frames, not the end
                self.corrupt_frames += failed
                failed = []
        self._capture.release()


@contextlib.contextmanager
def video_writer(path: str, fps: float, size_wh: tuple[int, int]):
    """Yield ``write(frame_rgb)``; the video appears at ``path`` only when the block completes and the file
    reads back with every frame written (OpenCV's writer reports no errors: a full disk would otherwise rename
    a truncated, unplayable video into place)."""
    extension = os.path.splitext(path)[1].lower()
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=extension, dir=directory)
    except OSError as error:
        raise ToolkitError(f"{path}: cannot write video ({error.strerror or error})") from None
    os.close(fd)
    writer = cv2.VideoWriter(tmp_path, cv2.VideoWriter_fourcc(*_FOURCC.get(extension, "mp4v")), fps, size_wh)
    written = [0]

    def write(frame) -> None:
        writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
        written[0] += 1

    try:
        if not writer.isOpened():
            raise ToolkitError(f"{path}: cannot write video (no encoder for {extension!r})")
        yield write
        writer.release()
        _check_written_video(tmp_path, written[0], path)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        writer.release()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)


def _check_written_video(tmp_path: str, frames: int, path: str) -> None:
    """The finished temporary video must open, declare at least ``frames`` frames and decode its last one
    (a write cut short by a full disk loses the end: an .mp4 its index, an .avi its last frames)."""
    capture = cv2.VideoCapture(tmp_path)
    try:
        declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
        whole = capture.isOpened() and (frames == 0 or (
            declared >= frames and capture.set(cv2.CAP_PROP_POS_FRAMES, frames - 1) and capture.read()[0]))
    finally:
        capture.release()
    if not whole:
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(tmp_path))).free
        raise ToolkitError(f"{path}: the video could not be written completely (its last of {frames} frames does "
                           f"not read back; {free >> 20} MiB free on its disk); no video was written")
