"""Extra detection passes around one-image BlazeFace detection: close-ups, small faces, sharper keypoints.

    detector = MultiPassDetector(DetectorPredictor("inference_model/blazeface_full_range"))
    faces = detector.detect(image_rgb)            # same Detection list as DetectorPredictor.detect

Each pass is measured on real photos (docs/detection_quality.md); none costs anything on an ordinary photo
unless it says so:

* **close-up pass** (``closeup=True``): BlazeFace anchors stop short of a face that fills the frame (an aligned
  112×112 crop, a tight selfie or ID photo); the full-range model finds 29 % of such faces.  When the first
  pass finds nothing, the image is run again centred on black square canvases 2× and 3× its long side (one
  batch of two) and the results are merged by weighted NMS → 95–99 %.  Photos where a face was found cost
  nothing more; a photo without faces costs one more (batched) network run.
* **tiling** (``tiling="auto"``, or a tile side in pixels, or ``None``): overlapping tiles of a large photo
  merged with the whole-image pass (:mod:`blazeface_paddle.inference.tiling`).  ``"auto"`` tiles only a photo
  whose long side is at least :data:`AUTO_TILE_MIN_SIDE` pixels and whose first pass found a face less than
  :data:`AUTO_TILE_SMALL_FACE` of the long side high — a group photo — with tiles :func:`auto_tile_size` wide
  (4× that face, so the network sees faces of its size at a quarter of its input).  No portrait of the test
  photos triggers it; a photo where the first pass found nothing is not tiled (CCTV frames with only tiny faces
  need a fixed tile size: docs/detection_quality.md).
* **keypoint refinement** (``refine_keypoints=True``): each face is looked at again in a square crop
  :data:`REFINE_EXPAND` × its box (and in the mirror image of that crop; both in one batch) so the network sees
  it at ~96 pixels instead of a few dozen; the keypoints of the two views are averaged.  This is what face
  alignment needs (``arcface_paddle.pipeline.face_alignment``); it costs one batched run per photo with faces.
"""
from __future__ import annotations

import copy

import cv2
import numpy as np

from arcface_paddle.core.boxes import box_iou
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import as_rgb_uint8
from blazeface_paddle.inference.letterbox import letterbox
from blazeface_paddle.inference.nms import weighted_nms
from blazeface_paddle.inference.predictor import Detection
from blazeface_paddle.inference.tiling import merge_tiles, tile_windows

CLOSEUP_CANVAS_FACTORS = (2.0, 3.0)     # canvas side / image long side for the close-up pass
AUTO_TILE_MIN_SIDE = 960                # pixels: smaller photos are never tiled by "auto"
AUTO_TILE_SMALL_FACE = 0.125            # face height / photo long side: faces the network saw at < 1/8 of its input
AUTO_TILE_OVERLAP = 0.25
REFINE_EXPAND = 2.0                     # refinement crop side / face box side
MIRROR_KEYPOINTS = [1, 0, 2, 3, 5, 4]   # BlazeFace order under a horizontal flip (eyes and ears swap sides)


def auto_tile_size(smallest_face: float, input_size: int) -> int:
    """Tile side for ``tiling="auto"``: 4× the smallest face found, never below 2 network inputs."""
    return int(max(2 * input_size, round(4 * smallest_face)))


def tiling_from_text(value):
    """Command-line ``--tile-size``: "auto", "off" (or none) or a tile side of at least 16 pixels."""
    if value is None or str(value).lower() in ("off", "none", "0"):
        return None
    if str(value).lower() == "auto":
        return "auto"
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 16:
        raise ToolkitError(f"tile size must be 'auto', 'off' or at least 16 pixels, got {value!r}")
    return size


def _as_arrays(detections, num_points: int = 6) -> tuple:
    boxes = np.array([d.box for d in detections], np.float32).reshape(-1, 4)
    points = np.array([d.keypoints for d in detections], np.float32).reshape(-1, num_points, 2)
    return boxes, points, np.array([d.score for d in detections], np.float32)


def _as_detections(boxes, keypoints, scores, height: int, width: int) -> list:
    boxes = np.clip(np.asarray(boxes, np.float32).reshape(-1, 4), 0, [width, height, width, height])
    return [Detection(box=tuple(float(v) for v in b), score=float(s), keypoints=np.asarray(k, np.float32))
            for b, k, s in zip(boxes, keypoints, scores) if b[2] > b[0] and b[3] > b[1]]


def centred_canvas(image: np.ndarray, factor: float) -> tuple:
    """(black square canvas of side ``factor`` × the image's long side with the image centred, (x0, y0) offset)."""
    height, width = image.shape[:2]
    side = int(round(max(height, width) * factor))
    x0, y0 = (side - width) // 2, (side - height) // 2
    canvas = np.zeros((side, side, 3), np.uint8)
    canvas[y0:y0 + height, x0:x0 + width] = image
    return canvas, (x0, y0)


class MultiPassDetector:
    """A :class:`~blazeface_paddle.inference.predictor.DetectorPredictor` plus the passes above.

    Attributes it does not define (``score_threshold``, ``input_size``, ``model_dir``, ...) are the predictor's.
    """

    def __init__(self, predictor, closeup: bool = True, tiling="auto", refine_keypoints: bool = False):
        if tiling not in (None, "auto") and (isinstance(tiling, bool) or not isinstance(tiling, int) or tiling < 16):
            raise ValueError(f"tiling must be None, 'auto' or a tile side in pixels (>= 16), got {tiling!r}")
        self.predictor = predictor
        self.closeup = bool(closeup)
        self.tiling = tiling
        self.refine_keypoints = bool(refine_keypoints)

    def __getattr__(self, name):
        if name == "predictor":                       # not set yet (e.g. during unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.predictor, name)

    def clone(self) -> "MultiPassDetector":
        """A twin with its own predictor (sharing the weights), for another thread."""
        twin = copy.copy(self)
        twin.predictor = self.predictor.clone()
        return twin

    # ---- network runs ------------------------------------------------------------------------------------
    def _run(self, images) -> list:
        """Each image letterboxed and run (in batches) → [(boxes, keypoints, scores)] in that image's pixels,
        through the predictor's shared per-image postprocessing (threshold, NMS, letterbox back-mapping)."""
        if not images:
            return []
        placed = [letterbox(image, self.predictor.input_size) for image in images]
        return self.predictor.run_windows([canvas for canvas, _ in placed], [placement for _, placement in placed])

    # ---- the passes --------------------------------------------------------------------------------------
    def closeup_pass(self, image: np.ndarray) -> list:
        """Faces found with the image centred on larger black canvases (for faces that fill the frame)."""
        height, width = image.shape[:2]
        placed = [centred_canvas(image, factor) for factor in CLOSEUP_CANVAS_FACTORS]
        found = self._run([canvas for canvas, _ in placed])
        boxes = np.concatenate([b - np.tile(np.float32(offset), 2) for (b, _, _), (_, offset) in zip(found, placed)])
        points = np.concatenate([k - np.float32(offset) for (_, k, _), (_, offset) in zip(found, placed)])
        scores = np.concatenate([s for _, _, s in found])
        return _as_detections(*weighted_nms(boxes, points, scores, self.predictor.nms_threshold), height, width)

    def tile_size_for(self, image: np.ndarray, detections) -> int | None:
        """The tile side this detector uses on ``image`` after a first pass found ``detections`` (None: no tiles)."""
        if self.tiling is None:
            return None
        height, width = image.shape[:2]
        if self.tiling != "auto":
            return int(self.tiling)
        long_side = max(height, width)
        if long_side < AUTO_TILE_MIN_SIDE or not detections:
            return None
        smallest = min(d.box[3] - d.box[1] for d in detections)
        if smallest >= AUTO_TILE_SMALL_FACE * long_side:
            return None
        return auto_tile_size(smallest, self.predictor.input_size)

    def tile_pass(self, image: np.ndarray, detections, tile_size: int) -> list:
        """The first-pass ``detections`` merged with detections on overlapping ``tile_size`` tiles."""
        height, width = image.shape[:2]
        windows = tile_windows(height, width, tile_size, AUTO_TILE_OVERLAP)[1:]      # [0] is the whole image
        if not windows:
            return list(detections)
        tiles = self._run([image[y0:y1, x0:x1] for x0, y0, x1, y1 in windows])
        results = [((0, 0, width, height), _as_arrays(detections))] + list(zip(windows, tiles))
        return _as_detections(*merge_tiles(results, height, width, self.predictor.nms_threshold), height, width)

    def refine(self, image: np.ndarray, detections) -> list:
        """``detections`` with keypoints re-estimated on a close crop of each face and its mirror image."""
        return self.refine_batch([image], [detections])[0]

    def refine_batch(self, images, detections_per_image) -> list:
        """:meth:`refine` for several images, the crops of all their faces run together in batches."""
        prepared = [self._refine_crops(image, detections) for image, detections in zip(images, detections_per_image)]
        found = self._run([crop for crops, _ in prepared for crop in crops])
        refined, start = [], 0
        for detections, (crops, matrices) in zip(detections_per_image, prepared):
            refined.append(self._refined(detections, matrices, found[start:start + len(crops)]))
            start += len(crops)
        return refined

    def _refine_crops(self, image: np.ndarray, detections) -> tuple:
        """(a square crop around each face and its mirror image, the crop's affine matrix per face)."""
        size = self.predictor.input_size
        crops, matrices = [], []
        for face in detections:
            x1, y1, x2, y2 = face.box
            scale = size / (max(x2 - x1, y2 - y1, 1.0) * REFINE_EXPAND)
            matrix = np.array([[scale, 0, size / 2 - scale * (x1 + x2) / 2],
                               [0, scale, size / 2 - scale * (y1 + y2) / 2]], np.float64)
            crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            crops += [crop, np.ascontiguousarray(crop[:, ::-1])]
            matrices.append(matrix)
        return crops, matrices

    def _refined(self, detections, matrices, found) -> list:
        """``detections`` with the keypoints of the two views of each crop averaged, back in image pixels."""
        size = self.predictor.input_size
        expected = np.array([size / 2 - size / REFINE_EXPAND / 2] * 2 + [size / 2 + size / REFINE_EXPAND / 2] * 2)
        refined = []
        for number, (face, matrix) in enumerate(zip(detections, matrices)):
            views = []
            for view, mirrored in ((found[2 * number], False), (found[2 * number + 1], True)):
                boxes, points, _ = view
                if not len(boxes):
                    continue
                if mirrored:
                    boxes = np.stack([size - boxes[:, 2], boxes[:, 1], size - boxes[:, 0], boxes[:, 3]], axis=1)
                    points = np.concatenate([size - points[..., :1], points[..., 1:]], axis=-1)[:, MIRROR_KEYPOINTS]
                best = int(np.argmax(box_iou(expected, boxes)[0]))
                if box_iou(expected, boxes[best])[0, 0] >= 0.3:
                    views.append(points[best])
            if views:
                points = (np.mean(views, axis=0) - matrix[:, 2]) / matrix[0, 0]
                face = Detection(box=face.box, score=face.score, keypoints=points.astype(np.float32))
            refined.append(face)
        return refined

    # ---- detection ---------------------------------------------------------------------------------------
    def extra_passes(self, image: np.ndarray, detections, refine: bool | None = None) -> list:
        """Everything after the first (whole-image) pass, for one image; ``refine`` overrides
        ``refine_keypoints`` (the video tracker refines only the faces it recognises)."""
        if self.closeup and not detections:
            detections = self.closeup_pass(image)
        tile_size = self.tile_size_for(image, detections)
        if tile_size:
            detections = self.tile_pass(image, detections, tile_size)
        if self._refining(refine):
            detections = self.refine(image, detections)
        return sorted(detections, key=lambda d: -d.score)

    def _refining(self, refine: bool | None) -> bool:
        return self.refine_keypoints if refine is None else bool(refine)

    def detect(self, image) -> list:
        """Faces in one image, best score first (``Detection`` objects, as ``DetectorPredictor.detect``)."""
        image = as_rgb_uint8(image)
        return self.extra_passes(image, self.predictor.detect(image))

    def detect_batch(self, images, refine: bool | None = None, **batch_options) -> list:
        """:meth:`detect` for each image; the first pass and the keypoint refinement batched across images."""
        images = [as_rgb_uint8(image) for image in images]
        if hasattr(self.predictor, "detect_batch"):
            first = self.predictor.detect_batch(images, **batch_options)
        else:
            first = [self.predictor.detect(image) for image in images]
        found = [self.extra_passes(image, detections, refine=False) for image, detections in zip(images, first)]
        if self._refining(refine):          # the crops of every face of every image in shared batches
            found = [sorted(refined, key=lambda d: -d.score) for refined in self.refine_batch(images, found)]
        return found
