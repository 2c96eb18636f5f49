"""Read and write face-detection annotations in the WIDER FACE and RetinaFace text formats.

WIDER FACE (``wider_face_train_bbx_gt.txt`` / ``wider_face_val_bbx_gt.txt``)::

    0--Parade/0_Parade_marchingband_1_849.jpg
    1
    449 330 122 149 0 0 0 0 0 0        # x y w h blur expression illumination invalid occlusion pose

  An image with no face has count ``0`` followed by one dummy line of ten zeros.

RetinaFace (InsightFace's ``train/label.txt``; ``val/label.txt`` has boxes only)::

    # 0--Parade/0_Parade_marchingband_1_849.jpg
    449 330 122 149 488.9 373.6 0.0 542.1 376.4 0.0 515.8 412.8 0.0 485.3 425.9 0.0 538.9 431.6 0.0 0.82

  ``x y w h`` then five landmarks as ``x y flag`` (image-left eye, image-right eye, nose, image-left mouth
  corner, image-right mouth corner) and a quality score; ``-1`` marks an absent landmark.  Our own
  synthetic scenes use the same layout with SIX landmarks (23 values per line) in MediaPipe's order, so
  the ear tragions survive the round trip.

Both become a list of :class:`ImageAnnotation` with MediaPipe's six keypoints (right eye, left eye, nose
tip, mouth centre, right ear, left ear; "right" = the person's right = image left).  The five RetinaFace
landmarks map onto the first four (mouth centre = midpoint of the corners); ears stay unannotated.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Iterable, List, Optional, Sequence

import numpy as np

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.finite_numbers import whole_number
from arcface_paddle.core.images import read_image
from arcface_paddle.core.safe_io import atomic_write
from blazeface_paddle.network.variants import KEYPOINT_NAMES

NUM_KEYPOINTS = len(KEYPOINT_NAMES)
WIDER_FIELDS = 10            # x y w h blur expression illumination invalid occlusion pose
WIDER_INVALID_COLUMN = 7
RETINA_BOX_ONLY = 4          # val/label.txt
RETINA_FIVE_POINTS = 4 + 5 * 3 + 1
RETINA_SIX_POINTS = 4 + 6 * 3 + 1


@dataclasses.dataclass
class ImageAnnotation:
    """The faces of one image. Boxes are ``x1 y1 x2 y2`` in original-image pixels."""

    image_path: str                      # as written in the annotation file (relative to the images root)
    boxes: np.ndarray                    # N×4 float32
    keypoints: np.ndarray                # N×6×2 float32 pixels (0 where absent)
    keypoint_mask: np.ndarray            # N×6 bool: keypoint annotated
    ignore: np.ndarray                   # N bool: WIDER "invalid" or smaller than min_face_size

    @property
    def num_faces(self) -> int:
        return int(self.boxes.shape[0])

    def without_ignored(self) -> "ImageAnnotation":
        keep = ~self.ignore
        return ImageAnnotation(self.image_path, self.boxes[keep], self.keypoints[keep],
                               self.keypoint_mask[keep], self.ignore[keep])


def _empty_annotation(image_path: str) -> ImageAnnotation:
    return ImageAnnotation(image_path, np.zeros((0, 4), np.float32),
                           np.zeros((0, NUM_KEYPOINTS, 2), np.float32),
                           np.zeros((0, NUM_KEYPOINTS), bool), np.zeros((0,), bool))


def _numbers(tokens: Sequence[str], where: str) -> List[float]:
    try:
        return [float(token) for token in tokens]
    except ValueError:
        raise ToolkitError(f"{where}: expected numbers, found {' '.join(tokens)[:60]!r}") from None


def _finish(image_path: str, rows: list, min_face_size: float, drop_ignored: bool) -> ImageAnnotation:
    """rows: (x, y, w, h, invalid, keypoints 6×2, mask 6) per face."""
    if not rows:
        return _empty_annotation(image_path)
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h, *_ in rows], np.float32)
    keypoints = np.stack([row[5] for row in rows]).astype(np.float32)
    mask = np.stack([row[6] for row in rows]).astype(bool)
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    ignore = np.array([row[4] for row in rows], bool) | (np.minimum(widths, heights) < max(min_face_size, 1e-6))
    annotation = ImageAnnotation(image_path, boxes, keypoints, mask, ignore)
    return annotation.without_ignored() if drop_ignored else annotation


def _no_keypoints():
    return np.zeros((NUM_KEYPOINTS, 2), np.float32), np.zeros(NUM_KEYPOINTS, bool)


def parse_wider(lines: Iterable[str], source: str, min_face_size: float = 0.0,
                drop_ignored: bool = False) -> List[ImageAnnotation]:
    """Parse ``wider_face_*_bbx_gt.txt`` lines; ``source`` names the file in errors."""
    numbered = [(number, line.strip()) for number, line in enumerate(lines, start=1)]
    numbered = [(number, line) for number, line in numbered if line]
    annotations, cursor = [], 0
    while cursor < len(numbered):
        path_line, image_path = numbered[cursor]
        if cursor + 1 >= len(numbered):
            raise ToolkitError(f"{source}:{path_line}: image {image_path!r} has no face-count line")
        count_line, count_text = numbered[cursor + 1]
        count = whole_number(count_text, f"{source}:{count_line}", "face count")
        body = numbered[cursor + 2: cursor + 2 + max(count, 1)]   # count 0 is followed by one dummy line
        if len(body) < max(count, 1):
            raise ToolkitError(f"{source}:{count_line}: image {image_path!r} declares {count} faces, "
                               f"file ends after {len(body)} box lines")
        rows = []
        for line_number, text in body[:count]:
            where = f"{source}:{line_number}"
            values = _numbers(text.split(), where)
            if len(values) != WIDER_FIELDS:
                raise ToolkitError(f"{where}: expected {WIDER_FIELDS} values (x y w h blur expression "
                                   f"illumination invalid occlusion pose), found {len(values)}")
            x, y, w, h = values[:4]
            invalid = values[WIDER_INVALID_COLUMN] != 0 or w <= 0 or h <= 0
            rows.append((x, y, w, h, invalid, *_no_keypoints()))
        annotations.append(_finish(image_path, rows, min_face_size, drop_ignored))
        cursor += 2 + max(count, 1)
    return annotations


def _retina_row(values: List[float], where: str):
    x, y, w, h = values[:4]
    keypoints, mask = _no_keypoints()
    if len(values) == RETINA_FIVE_POINTS:
        points = np.array(values[4:19], np.float32).reshape(5, 3)[:, :2]
        present = (points >= 0).all(axis=1)
        keypoints[:3], mask[:3] = points[:3], present[:3]
        if present[3] and present[4]:
            keypoints[3], mask[3] = points[3:5].mean(axis=0), True
    elif len(values) == RETINA_SIX_POINTS:
        points = np.array(values[4:22], np.float32).reshape(6, 3)[:, :2]
        keypoints, mask = points.copy(), (points >= 0).all(axis=1)
        keypoints[~mask] = 0
    elif len(values) != RETINA_BOX_ONLY:
        raise ToolkitError(f"{where}: expected {RETINA_BOX_ONLY}, {RETINA_FIVE_POINTS} or {RETINA_SIX_POINTS} "
                           f"values (x y w h [landmarks x y flag ...] [score]), found {len(values)}")
    return (x, y, w, h, w <= 0 or h <= 0, keypoints, mask)


def parse_retinaface(lines: Iterable[str], source: str, min_face_size: float = 0.0,
                     drop_ignored: bool = False) -> List[ImageAnnotation]:
    """Parse RetinaFace ``label.txt`` lines (``# path`` headers, one face per line)."""
    annotations, image_path, rows = [], None, []
    for line_number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        if text.startswith("#"):
            if image_path is not None:
                annotations.append(_finish(image_path, rows, min_face_size, drop_ignored))
            image_path, rows = text[1:].strip(), []
            if not image_path:
                raise ToolkitError(f"{source}:{line_number}: '#' line without an image path")
            continue
        where = f"{source}:{line_number}"
        if image_path is None:
            raise ToolkitError(f"{where}: face line before the first '# image path' line")
        rows.append(_retina_row(_numbers(text.split(), where), where))
    if image_path is not None:
        annotations.append(_finish(image_path, rows, min_face_size, drop_ignored))
    return annotations


def read_annotations(path: str, min_face_size: float = 0.0, drop_ignored: bool = False) -> List[ImageAnnotation]:
    """Read a WIDER FACE or RetinaFace annotation file (told apart by a leading ``#`` line).

    ``min_face_size``: faces whose shorter box side is below it (pixels) are marked ``ignore``;
    ``drop_ignored`` removes ignored faces (for training) instead of keeping them flagged (for AP).
    """
    if not os.path.isfile(path):
        raise ToolkitError(f"{path}: annotation file not found")
    try:
        with open(path, "r", encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except UnicodeDecodeError:
        raise ToolkitError(f"{path}: not a text annotation file (not UTF-8)") from None
    first = next((line.strip() for line in lines if line.strip()), "")
    parse = parse_retinaface if first.startswith("#") else parse_wider
    annotations = parse(lines, path, min_face_size=min_face_size, drop_ignored=drop_ignored)
    if not annotations:
        raise ToolkitError(f"{path}: no images in the annotation file")
    return annotations


def _format_number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def write_wider(path: str, annotations: Sequence[ImageAnnotation]) -> None:
    """Write boxes in the WIDER FACE layout (keypoints are not part of it); atomic."""
    with atomic_write(path, "w") as handle:
        for item in annotations:
            handle.write(f"{item.image_path}\n{item.num_faces}\n")
            for box, ignored in zip(item.boxes, item.ignore):
                x1, y1, x2, y2 = (_format_number(round(float(v), 2)) for v in box)
                w, h = _format_number(round(float(box[2] - box[0]), 2)), _format_number(round(float(box[3] - box[1]), 2))
                handle.write(f"{x1} {y1} {w} {h} 0 0 0 {int(bool(ignored))} 0 0\n")
            if item.num_faces == 0:
                handle.write("0 0 0 0 0 0 0 0 0 0\n")


def write_retinaface(path: str, annotations: Sequence[ImageAnnotation], six_points: bool = True) -> None:
    """Write the RetinaFace layout; ``six_points`` keeps all six MediaPipe keypoints (23 values a line)."""
    with atomic_write(path, "w") as handle:
        for item in annotations:
            handle.write(f"# {item.image_path}\n")
            for box, points, mask in zip(item.boxes, item.keypoints, item.keypoint_mask):
                values = [box[0], box[1], box[2] - box[0], box[3] - box[1]]
                if six_points:
                    for point, present in zip(points, mask):
                        values += [point[0], point[1], 0.0] if present else [-1.0, -1.0, -1.0]
                    values.append(1.0 if mask.any() else -1.0)
                handle.write(" ".join(_format_number(round(float(v), 2)) for v in values) + "\n")


def read_annotated_image(images_root: Optional[str], image_path: str) -> np.ndarray:
    """An annotated image as H×W×3 uint8 RGB (through the one image reader); a missing file names the list."""
    full_path = os.path.join(images_root, image_path) if images_root else image_path
    if not os.path.isfile(full_path):
        raise ToolkitError(f"{full_path}: image listed in the annotation file not found")
    return read_image(full_path)


def resolve_images_root(annotation_file: str, annotations: Sequence[ImageAnnotation],
                        images_root: Optional[str] = None) -> str:
    """Folder the annotation's image paths are relative to: ``images_root`` when given, else the
    annotation file's folder or its ``images/`` subfolder (RetinaFace's ``train/label.txt`` layout),
    whichever holds the first listed image."""
    if images_root:
        if not os.path.isdir(images_root):
            raise ToolkitError(f"{images_root}: images folder not found")
        return images_root
    base = os.path.dirname(os.path.abspath(annotation_file))
    first = annotations[0].image_path if annotations else ""
    for candidate in (base, os.path.join(base, "images")):
        if os.path.isfile(os.path.join(candidate, first)):
            return candidate
    raise ToolkitError(f"{annotation_file}: cannot find its images (looked for {first!r} in {base} and "
                       f"{os.path.join(base, 'images')}); pass the images folder explicitly")


class DetectionDataset:
    """The images and faces of one annotation file, each sample passed through ``transform``.

    ``transform(image_rgb, (boxes, keypoints, keypoint_mask), rng)`` returns the sample arrays; its
    randomness comes from ``rng`` seeded by ``(seed, epoch, index)`` so a resumed run sees the same
    augmentations.  Ignored faces (WIDER "invalid", below ``min_face_size``) are dropped.
    Subclass-free paddle Dataset: paddle.io.DataLoader only needs ``__getitem__``/``__len__``.
    """

    def __init__(self, annotation_file: str, images_root: Optional[str] = None, transform=None,
                 min_face_size: float = 0.0, seed: int = 0):
        self.annotation_file = annotation_file
        self.annotations = read_annotations(annotation_file, min_face_size=min_face_size, drop_ignored=True)
        self.images_root = resolve_images_root(annotation_file, self.annotations, images_root)
        self.transform = transform
        self.seed, self.epoch = int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.annotations)

    def __getitem__(self, index: int):
        item = self.annotations[index]
        image = read_annotated_image(self.images_root, item.image_path)
        faces = (item.boxes.copy(), item.keypoints.copy(), item.keypoint_mask.copy())
        if self.transform is None:
            return image, faces
        rng = np.random.default_rng([self.seed, self.epoch, int(index), 0xDE7])
        return self.transform(image, faces, rng)
