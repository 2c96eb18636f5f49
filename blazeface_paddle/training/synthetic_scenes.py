"""Synthetic face-detection scenes: synthetic heads pasted on textured backgrounds, with boxes and keypoints.

Heads come from :meth:`arcface_paddle.synthetic.faces.SyntheticFaces.render_rgba` (alpha = head mask,
six MediaPipe keypoints); backgrounds mix gradients, noise, stripes and shapes, including skin-coloured
ellipses as hard negatives.  Scene ``i`` is a pure function of ``(seed, i)``; scenes of a different
seed show different people on different backgrounds (held-out data).

The face box follows BlazeFace's notion of a face — forehead to chin, ear to ear — built from the
keypoints in the head's own frame (so hair and neck are not in it), then made axis-aligned.

:meth:`SyntheticScenes.write` stores images plus a RetinaFace-layout ``label.txt`` (six keypoints a
face) or a WIDER-layout file, read back by :mod:`blazeface_paddle.training.annotations` like real data.
"""
from __future__ import annotations

import dataclasses
import os
from typing import List, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from arcface_paddle.core.images import encode_image
from arcface_paddle.core.safe_io import atomic_save_bytes
from arcface_paddle.synthetic.faces import SyntheticFaces
from blazeface_paddle.training.annotations import ImageAnnotation, write_retinaface, write_wider

# Face box in units of d = |eye midpoint − mouth centre|, in the head's frame.
_BOX_HALF_HEIGHT = 1.15
_BOX_CENTRE_BELOW_EYES = 0.45          # box centre sits this far from the eyes towards the mouth
_BOX_MIN_HALF_WIDTH = 1.0
_PATCH_PER_BOX_HEIGHT = 128 / 84       # render_rgba canvas size per face-box height (measured mean)
_SKIN_TONES = np.array([[255, 224, 196], [224, 172, 130], [198, 134, 96], [160, 102, 66], [88, 56, 38]], np.float32)


def face_box_from_keypoints(keypoints: np.ndarray) -> np.ndarray:
    """``x1 y1 x2 y2`` of the face (forehead to chin, ear to ear) from six MediaPipe keypoints."""
    keypoints = np.asarray(keypoints, np.float32)
    eye_mid, mouth = keypoints[:2].mean(axis=0), keypoints[3]
    down = mouth - eye_mid
    d = float(np.linalg.norm(down)) or 1.0
    down /= d
    right = np.array([-down[1], down[0]], np.float32)       # image-right when the face is upright
    centre = eye_mid + down * d * _BOX_CENTRE_BELOW_EYES
    ears = keypoints[4:6] - centre
    half_width = max(float(np.abs(ears @ right).max()), _BOX_MIN_HALF_WIDTH * d)
    half_height = _BOX_HALF_HEIGHT * d
    corners = np.array([centre + sx * half_width * right + sy * half_height * down
                        for sx in (-1, 1) for sy in (-1, 1)])
    return np.concatenate([corners.min(axis=0), corners.max(axis=0)]).astype(np.float32)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (np.cos(angle) * xs / width + np.sin(angle) * ys / height)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    image = c0 + (c1 - c0) * ramp[..., None]
    kind = rng.integers(0, 3)
    if kind == 0:                                                # stripes
        period = rng.uniform(4, 24)
        phase = np.cos(rng.uniform(0, np.pi)) * xs + np.sin(rng.uniform(0, np.pi)) * ys
        image += (np.sin(phase * 2 * np.pi / period) > 0)[..., None] * rng.uniform(-80, 80, 3)
    elif kind == 1:                                              # blotchy low-frequency noise
        coarse = rng.uniform(-60, 60, (max(2, height // 16), max(2, width // 16), 3)).astype(np.float32)
        image += cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    image = image.clip(0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 7))):                   # shapes, some skin-coloured ellipses
        colour = _SKIN_TONES[rng.integers(len(_SKIN_TONES))] if rng.random() < 0.3 else rng.uniform(0, 255, 3)
        colour = tuple(float(v) for v in colour)
        centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        size = max(2, int(rng.uniform(0.03, 0.25) * min(height, width)))
        if rng.random() < 0.5:
            axes = (size, max(1, int(size * rng.uniform(0.5, 1.5))))
            cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
        else:
            corner = (centre[0] + size, centre[1] + int(size * rng.uniform(0.3, 1.5)))
            cv2.rectangle(image, centre, corner, colour, -1)
    grain = rng.standard_normal(image.shape).astype(np.float32) * rng.uniform(0, 8)
    return (image.astype(np.float32) + grain).clip(0, 255).astype(np.uint8)


def _overlaps(box: np.ndarray, others: np.ndarray, limit: float) -> bool:
    """True when ``box``'s head (the face box grown by hair and ears) and an earlier face would cover
    more than ``limit`` of either face — later heads are pasted over earlier ones."""
    def grown(b):
        margin = (b[..., 2:] - b[..., :2]) * 0.3
        return np.concatenate([b[..., :2] - margin, b[..., 2:] + margin], axis=-1)

    def covered(covering, faces):
        top_left = np.maximum(covering[..., :2], faces[..., :2])
        bottom_right = np.minimum(covering[..., 2:], faces[..., 2:])
        inter = np.prod((bottom_right - top_left).clip(min=0), axis=-1)
        return inter / np.maximum(np.prod(faces[..., 2:] - faces[..., :2], axis=-1), 1e-6)

    return bool((covered(grown(box), others) > limit).any() or (covered(grown(others), box[None]) > limit).any())


def _paste(canvas: np.ndarray, rgba: np.ndarray, x0: int, y0: int) -> None:
    """Alpha-blend ``rgba`` onto ``canvas`` with its top-left corner at (x0, y0), clipped to the canvas."""
    height, width = canvas.shape[:2]
    size_h, size_w = rgba.shape[:2]
    left, top = max(0, x0), max(0, y0)
    right, bottom = min(width, x0 + size_w), min(height, y0 + size_h)
    if right <= left or bottom <= top:
        return
    patch = rgba[top - y0:bottom - y0, left - x0:right - x0].astype(np.float32)
    alpha = patch[..., 3:] / 255.0
    region = canvas[top:bottom, left:right].astype(np.float32)
    canvas[top:bottom, left:right] = (patch[..., :3] * alpha + region * (1 - alpha)).round().astype(np.uint8)


@dataclasses.dataclass
class SyntheticScenes:
    """Seeded detection scenes. ``render(i)`` → (H×W×3 uint8 RGB, ImageAnnotation)."""

    seed: int = 0
    image_size: Tuple[int, int] = (128, 128)          # height, width
    faces_per_scene: Tuple[int, int] = (0, 3)         # inclusive range
    face_height: Tuple[float, float] = (16.0, 80.0)   # face-box height range in pixels (log-uniform)
    num_identities: int = 1000
    max_overlap: float = 0.15                         # share of a face another head may cover
    inside_fraction: float = 0.7                      # share of a face box that must stay in the image

    def __post_init__(self):
        self.image_size = tuple(int(v) for v in np.broadcast_to(self.image_size, (2,)))
        # The people depend on the scene seed: another seed means other (held-out) people.
        self._faces = SyntheticFaces(self.num_identities, 1, seed=int(self.seed) + 7919)

    def render(self, index: int) -> Tuple[np.ndarray, ImageAnnotation]:
        rng = np.random.default_rng([int(self.seed), int(index), 0x5CE])
        height, width = self.image_size
        image = _background(rng, height, width)
        boxes, points = [], []
        low, high = self.faces_per_scene
        for _ in range(int(rng.integers(low, high + 1))):
            for _attempt in range(10):
                target = float(np.exp(rng.uniform(*np.log(self.face_height))))
                patch = max(8, int(round(target * _PATCH_PER_BOX_HEIGHT)))
                x0 = int(rng.integers(-patch // 4, max(1, width - patch * 3 // 4)))
                y0 = int(rng.integers(-patch // 4, max(1, height - patch * 3 // 4)))
                rgba, keypoints = self._faces.render_rgba(int(rng.integers(self.num_identities)),
                                                          int(rng.integers(1 << 30)), patch)
                keypoints = keypoints + np.array([x0, y0], np.float32)
                box = face_box_from_keypoints(keypoints)
                clipped = np.array([max(box[0], 0), max(box[1], 0), min(box[2], width), min(box[3], height)])
                area = np.prod((box[2:] - box[:2]).clip(min=0))
                if np.prod((clipped[2:] - clipped[:2]).clip(min=0)) < self.inside_fraction * area:
                    continue
                if boxes and _overlaps(clipped, np.array(boxes), self.max_overlap):
                    continue
                _paste(image, rgba, x0, y0)
                boxes.append(clipped.astype(np.float32))
                points.append(keypoints)
                break
        return image, _annotation(f"scene_{index:06d}.jpg", boxes, points, height, width)

    def write(self, root: str, num_scenes: int, start: int = 0, layout: str = "retinaface",
              quality: int = 95) -> str:
        """Write ``root/images/*.jpg`` and ``root/label.txt`` (RetinaFace layout, six keypoints) or
        ``root/wider_face_bbx_gt.txt`` (WIDER layout); returns the annotation file's path."""

        if layout not in ("retinaface", "wider"):
            raise ValueError(f"layout must be 'retinaface' or 'wider', got {layout!r}")
        annotations: List[ImageAnnotation] = []
        for index in tqdm(range(start, start + num_scenes), desc="scenes", leave=False, disable=num_scenes < 200):
            image, annotation = self.render(index)
            annotation.image_path = f"images/{annotation.image_path}"
            atomic_save_bytes(os.path.join(root, annotation.image_path), encode_image(image, ".jpg", quality))
            annotations.append(annotation)
        if layout == "retinaface":
            path = os.path.join(root, "label.txt")
            write_retinaface(path, annotations)
        else:
            path = os.path.join(root, "wider_face_bbx_gt.txt")
            write_wider(path, annotations)
        return path


def _annotation(name: str, boxes, points, height: int, width: int) -> ImageAnnotation:
    num = len(boxes)
    keypoints = np.array(points, np.float32).reshape(num, 6, 2)
    mask = ((keypoints[..., 0] >= 0) & (keypoints[..., 0] < width) &
            (keypoints[..., 1] >= 0) & (keypoints[..., 1] < height))
    keypoints = np.where(mask[..., None], keypoints, 0).astype(np.float32)
    return ImageAnnotation(name, np.array(boxes, np.float32).reshape(num, 4), keypoints, mask, np.zeros(num, bool))
