"""A short video filmed over the real test portraits: a pan, a face leaving and re-entering, a zoom, an occlusion.

Four portraits (tests/data/faces, see SOURCES.md) hang side by side on a grey wall; a 4:3 camera window moves
over the wall and every frame is resized to the video size:

  frames  0–13  pan right: obama2 (left) leaves the frame      frames 31–38  zoom in on obama2 + astronaut
  frames 14–16  hold: obama2 out of view                       frames 39–44  a hand covers obama2's mouth and chin
  frames 17–30  pan back left: obama2 re-enters

People: obama2 (Obama, not one of the gallery photos), astronaut (Eileen Collins: the stranger, no gallery
entry), grace_hopper and biden.  ``person_at`` maps a face centre in a frame back to the portrait it lies on,
the ground truth the tracking tests check against.

    python tests/data/make_tracking_video.py OUT.avi       # or: make_scene_video(path) from a test/benchmark
"""
from __future__ import annotations

import os
import sys

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
# (person, file, square crop x1, y1, side) in the photo's pixels: the face in the middle, ~2.2× its box
PORTRAITS = [("obama", "obama2.jpg", 30, 180, 480), ("unknown", "astronaut.png", 125, 20, 200),
             ("grace_hopper", "grace_hopper.jpg", 90, 40, 360), ("biden", "biden.jpg", 241, 51, 690)]
PANEL, GAP, WALL_HEIGHT, PANEL_TOP = 160, 20, 300, 70
WALL_WIDTH = len(PORTRAITS) * PANEL + (len(PORTRAITS) + 1) * GAP
FRAME_SIZE = (320, 240)       # width, height of the video


def _wall(faces_dir: str) -> np.ndarray:
    from arcface_paddle.core.images import read_image
    wall = np.full((WALL_HEIGHT, WALL_WIDTH, 3), 200, np.uint8)
    for position, (_, name, x1, y1, side) in enumerate(PORTRAITS):
        photo = read_image(os.path.join(faces_dir, name))
        panel = cv2.resize(photo[y1:y1 + side, x1:x1 + side], (PANEL, PANEL), interpolation=cv2.INTER_AREA)
        left = GAP + position * (PANEL + GAP)
        wall[PANEL_TOP:PANEL_TOP + PANEL, left:left + PANEL] = panel
    return wall


def camera_windows() -> list:
    """(x, y, width) of the 4:3 camera window on the wall for each frame, and whether obama2 is covered."""
    def window(x, width):
        height = width * 3 // 4
        return (int(round(x)), int(round(WALL_HEIGHT / 2 - height / 2)), int(round(width)))
    frames = [(window(x, 400), False) for x in np.linspace(0, WALL_WIDTH - 400, 14)]
    frames += [(window(WALL_WIDTH - 400, 400), False)] * 3
    frames += [(window(x, 400), False) for x in np.linspace(WALL_WIDTH - 400, 0, 14)]
    frames += [(window(200 - width / 2, width), False) for width in np.linspace(400, 270, 8)]
    frames += [(window(200 - 270 / 2, 270), True)] * 6
    return frames


def person_at(frame_number: int, x: float, y: float, frame_size: tuple = FRAME_SIZE) -> str | None:
    """The portrait under the frame point (x, y), or None on bare wall."""
    (left, top, width), _ = camera_windows()[frame_number % len(camera_windows())]
    scale = width / frame_size[0]
    wall_x, wall_y = left + x * scale, top + y * scale
    for position, (person, *_rest) in enumerate(PORTRAITS):
        panel_left = GAP + position * (PANEL + GAP)
        if panel_left <= wall_x < panel_left + PANEL and PANEL_TOP <= wall_y < PANEL_TOP + PANEL:
            return person
    return None


def scene_frames(faces_dir: str = os.path.join(HERE, "faces"), frame_size: tuple = FRAME_SIZE) -> list:
    wall = _wall(faces_dir)
    frames = []
    for (left, top, width), covered in camera_windows():
        view = wall.copy()
        if covered:      # a hand over obama2's mouth and chin: the lower half of the face
            chin_left = GAP + 40
            view[PANEL_TOP + 88:PANEL_TOP + 150, chin_left:chin_left + 85] = (150, 120, 100)
        crop = view[top:top + width * 3 // 4, left:left + width]
        frames.append(cv2.resize(crop, frame_size, interpolation=cv2.INTER_AREA))
    return frames


def make_scene_video(path: str, faces_dir: str = os.path.join(HERE, "faces"), fps: float = 10.0,
                     frame_size: tuple = FRAME_SIZE, repeats: int = 1) -> int:
    """Write the scene (``repeats`` times over) as a video (MJPG .avi / mp4v .mp4); returns the frame count."""
    from arcface_paddle.pipeline.media_io import video_writer
    frames = scene_frames(faces_dir, frame_size)
    with video_writer(path, fps, frame_size) as write:
        for _ in range(repeats):
            for frame in frames:
                write(frame)
    return len(frames) * repeats


if __name__ == "__main__":
    print(f"wrote {make_scene_video(sys.argv[1] if len(sys.argv) > 1 else 'tracking_scene.avi')} frames")
