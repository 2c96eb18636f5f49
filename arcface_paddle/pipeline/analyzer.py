"""``FaceAnalyzer``: detect → align → embed → match → draw, as a plain Python API.

    from arcface_paddle.pipeline import FaceAnalyzer
    analyzer = FaceAnalyzer(index="demo/index.bin")
    faces = analyzer.analyze(image_rgb)          # list[Face]
    drawn = analyzer.draw(image_rgb, faces)
    for faces in analyzer.analyze_stream(paths_or_images):     # any iterable; batched, one list per image
        ...

Batched API (stable names, docs/throughput.md): ``analyze_batch`` / ``analyze_stream`` run the detector on
``batch_size`` images at a time and the recognizer on the faces of all those images together; results equal
one-at-a-time ``analyze`` (tested).  The stages are public for callers that batch differently (a service
batching faces across requests, the video tracker recognising only some faces): ``detect_batch`` →
``embed_faces`` → ``match_faces``.

Colour order and normalisation of each model come from its ``model.yaml`` through the predictors; this
module only hands them RGB uint8 pixels.
"""
from __future__ import annotations

import copy
import os
import warnings
from typing import Iterable, Iterator, Optional, Sequence, Union

import cv2
import numpy as np

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.finite_numbers import finite
from arcface_paddle.core.images import read_image
from arcface_paddle.core.model_yaml import load_model_config, params_fingerprint
from arcface_paddle.core.shipped_models import DEFAULT_DETECTOR, DEFAULT_RECOGNIZER
from arcface_paddle.inference.recognizer import RecognitionPredictor
from arcface_paddle.pipeline import face_alignment as alignment
from arcface_paddle.pipeline.drawing import draw_faces, load_font
from arcface_paddle.pipeline.faces import CompareResult, Face, largest_face
from arcface_paddle.pipeline.gallery_builder import build_gallery
from arcface_paddle.pipeline.streaming import batched
from arcface_paddle.stores import GalleryInfo, GalleryStore, backend_of, open_store
from arcface_paddle.stores.index_format import GalleryIndex, load_index
from arcface_paddle.stores.vote import (
    DEFAULT_CANDIDATES,
    DEFAULT_REC_THRESHOLD,
    Match,
    embedding_distance,
    match_embeddings,
    recognition_threshold,
)
from blazeface_paddle.inference.passes import MultiPassDetector
from blazeface_paddle.inference.predictor import DEFAULT_BATCH_SIZE, DEFAULT_CPU_ENGINE, DetectorPredictor

DEFAULT_DET_MODEL, DEFAULT_REC_MODEL = DEFAULT_DETECTOR, DEFAULT_RECOGNIZER

ImageLike = Union[str, np.ndarray]
GalleryLike = Union[str, GalleryIndex, GalleryStore]


def _as_image(image: ImageLike) -> tuple[np.ndarray, str]:
    if isinstance(image, (str, os.PathLike)):
        return read_image(os.fspath(image)), os.fspath(image)
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ToolkitError(f"expected an H×W×3 uint8 RGB image, got {array.shape} {array.dtype}")
    return array, "image"


class FaceAnalyzer:
    """Detection + alignment + recognition + gallery matching with the shipped models by default.

    ``det=False`` treats every whole image as one face (input already cropped); ``rec=False`` only detects.
    ``index`` is a gallery path or URI (``index.bin``, ``gallery.db``, ``milvus://...``; see
    :mod:`arcface_paddle.stores`), a :class:`GalleryIndex` or a :class:`GalleryStore`; it must come from the
    same recognizer.
    ``use_gpu`` / ``use_tensorrt`` / ``precision`` (fp32, fp16) / ``gpu_id`` set where both models run.
    ``closeup``, ``tiling`` and ``refine_keypoints`` choose the extra detection passes of
    :class:`~blazeface_paddle.inference.passes.MultiPassDetector`.  ``refine_keypoints=True`` takes a second
    look at each face before aligning it: closer to the 5-point crop, but it doubles detection time and did not
    raise same-person similarities on the real test photos (docs/detection_quality.md), so it is off by default.
    """

    def __init__(self, det_model: Optional[str] = None, rec_model: Optional[str] = None,
                 index: Optional[GalleryLike] = None, det_thresh: Optional[float] = None,
                 rec_thresh: Optional[float] = None, cdd_num: int = DEFAULT_CANDIDATES,
                 cpu_threads: int = 2, use_gpu: bool = False, align: bool = True, det: bool = True,
                 rec: bool = True, font: Optional[str] = None, search_backend: str = "numpy",
                 use_tensorrt: bool = False, precision: str = "fp32", gpu_id: int = 0,
                 closeup: bool = True, tiling="auto", refine_keypoints: bool = False,
                 batch_size: int = DEFAULT_BATCH_SIZE, det_engine: str = DEFAULT_CPU_ENGINE):
        if not (det or rec):
            raise ToolkitError("nothing to do: enable detection (--det), recognition (--rec) or both")
        if int(batch_size) < 1:
            raise ToolkitError(f"batch_size (images per detector run) must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        if int(cdd_num) < 1:
            raise ToolkitError(f"cdd_num (gallery candidates that vote) must be >= 1, got {cdd_num}")
        self.rec_thresh = DEFAULT_REC_THRESHOLD if rec_thresh is None else finite(rec_thresh, "rec_thresh")
        self.rec_thresh_source = "default, measured for the shipped SFace model" if rec_thresh is None else "given"
        self.cdd_num = int(cdd_num)
        self.align = bool(align)
        self.uses_detector = bool(det)
        self.font = font
        if font:
            load_font(font, 12)       # an unreadable font fails now, not after the first image is processed
        self.search_backend = search_backend
        # Cheap checks first (model.yaml files, gallery, font) so a bad argument fails before models load.
        self.recognizer, self.rec_model_dir, self.rec_config, self.index = None, None, None, None
        if rec:
            self.rec_model_dir = os.fspath(rec_model or DEFAULT_REC_MODEL)
            self.rec_config = load_model_config(self.rec_model_dir)
            if self.rec_config.task != "recognition":
                raise ToolkitError(f"{self.rec_model_dir}: model.yaml says task {self.rec_config.task!r}, "
                                   "expected a recognition model")
            if rec_thresh is None:
                self.rec_thresh, self.rec_thresh_source = recognition_threshold(self.rec_config)
            if index is not None:
                self.set_index(index)
        elif index is not None:
            raise ToolkitError("a gallery index needs recognition enabled (--rec)")
        det_dir = os.fspath(det_model or DEFAULT_DET_MODEL)
        if det and load_model_config(det_dir).task != "detection":
            raise ToolkitError(f"{det_dir}: model.yaml does not describe a detection model")
        device = dict(cpu_threads=cpu_threads, use_gpu=use_gpu, use_tensorrt=use_tensorrt, precision=precision,
                      gpu_id=gpu_id)    # the same inference device for both models
        refine = bool(refine_keypoints)
        self.detector = (MultiPassDetector(DetectorPredictor(det_dir, score_threshold=det_thresh, cpu_engine=det_engine,
                                                             **device),
                                           closeup=closeup, tiling=tiling, refine_keypoints=refine) if det else None)
        if rec:
            self.recognizer = RecognitionPredictor(self.rec_model_dir, **device)

    def clone(self) -> "FaceAnalyzer":
        """A twin for another thread: same settings and gallery, its own predictors (sharing the weights)."""
        twin = copy.copy(self)
        twin.detector = None if self.detector is None else self.detector.clone()
        twin.recognizer = None if self.recognizer is None else self.recognizer.clone()
        return twin

    # ---- properties ---------------------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        if self.rec_config is None:
            raise ToolkitError("no recognizer loaded (recognition disabled)")
        if not self.rec_config.model_id:      # a hand-written model.yaml may lack it: same rule as export
            self.rec_config.model_id = params_fingerprint(self.rec_config.params_path(self.rec_model_dir))
        return str(self.rec_config.model_id)

    @property
    def crop_mode(self) -> str:
        """How faces are cut out for the recognizer (recorded in a gallery built with this analyzer)."""
        if not self.uses_detector:
            return "image"
        return "aligned" if self.align else "box"

    @property
    def crop_size(self) -> tuple[int, int]:
        height, width = self.rec_config.input_size
        return int(height), int(width)

    @property
    def gallery_info(self) -> GalleryInfo:
        """What a gallery matched by this analyzer must have been built with."""
        size = self.rec_config.embedding_size
        if not size and self.recognizer is not None:       # a hand-written model.yaml may not say: measure it
            size = self.recognizer.embed(np.zeros((1, *self.crop_size, 3), np.uint8)).shape[1]
        return GalleryInfo(self.model_id, self.crop_mode, int(size or 0))

    def set_index(self, index: GalleryLike) -> None:
        """Match against ``index``: an index.bin path stays a :class:`GalleryIndex` (faiss search available),
        other paths/URIs open a :class:`GalleryStore`; refused when built by another recognizer or empty."""
        if self.rec_config is None:
            raise ToolkitError("a gallery index needs recognition enabled (--rec)")
        size = self.rec_config.embedding_size
        if isinstance(index, GalleryIndex):
            index.check_model(self.model_id, self.rec_model_dir, size)
            self.index = index
        elif isinstance(index, GalleryStore):
            index.check_compatible(self.model_id, size, model_dir=self.rec_model_dir)
            self.index = index
        elif backend_of(os.fspath(index)) == "index.bin":
            self.index = load_index(os.fspath(index), expected_model_id=self.model_id, model_dir=self.rec_model_dir,
                                    embedding_size=size)
        else:
            store = open_store(os.fspath(index), create=False)
            store.check_compatible(self.model_id, size, model_dir=self.rec_model_dir)
            self.index = store
        if len(self.index) == 0:
            raise ToolkitError(f"{self.index.source}: the gallery is empty; build it with --build_index")
        # Whole-image queries are crops the caller made (usually aligned ones): nothing to compare them with.
        if self.uses_detector and self.index.crop_mode != self.crop_mode:
            warnings.warn(f"{self.index.source}: gallery holds {self.index.crop_mode!r} face crops but queries are "
                          f"cut {self.crop_mode!r}; similarities will be lower than they should "
                          f"(use the same --no-align setting for both)", stacklevel=2)

    def match(self, embeddings: np.ndarray) -> list:
        """Names (``Match``) of L2-normalised embeddings by the top-``cdd_num`` vote in the gallery."""
        if isinstance(self.index, GalleryIndex):
            return match_embeddings(self.index, embeddings, threshold=self.rec_thresh, top_k=self.cdd_num,
                                    backend=self.search_backend)
        return self.index.match(embeddings, threshold=self.rec_thresh, top_k=self.cdd_num,
                                backend=self.search_backend)

    # ---- the pipeline -------------------------------------------------------------------------------------
    def detect(self, image_rgb: np.ndarray) -> list[Face]:
        return self.detect_batch([image_rgb])[0]

    def detect_batch(self, images_rgb: Sequence[np.ndarray], refine: Optional[bool] = None) -> list[list[Face]]:
        """Faces of each RGB uint8 image, left to right; the first detection pass runs on ``batch_size`` images
        at a time.  ``refine=False`` skips keypoint refinement (then :meth:`refine_faces` the faces that need it)."""
        if self.detector is None:
            return [[Face(box=(0.0, 0.0, float(image.shape[1]), float(image.shape[0])), score=1.0)]
                    for image in images_rgb]
        options = {} if refine is None else {"refine": refine}
        found = self.detector.detect_batch(images_rgb, batch_size=self.batch_size, **options)
        return [sorted((Face(box=tuple(float(v) for v in det.box), score=float(det.score),
                             keypoints=None if det.keypoints is None else np.asarray(det.keypoints, np.float32))
                        for det in detections), key=lambda face: (face.box[0], face.box[1]))   # as people read
                for detections in found]

    def refine_faces(self, images_rgb: Sequence[np.ndarray], faces_per_image: Sequence[Sequence[Face]]) -> None:
        """Keypoint refinement for these faces only (in place), when this analyzer refines keypoints."""
        if self.detector is None or not self.detector.refine_keypoints:
            return
        refined = self.detector.refine_batch(images_rgb, [list(faces) for faces in faces_per_image])
        for faces, detections in zip(faces_per_image, refined):
            for face, detection in zip(faces, detections):
                face.keypoints = np.asarray(detection.keypoints, np.float32)

    def crop(self, image_rgb: np.ndarray, face: Face) -> np.ndarray:
        """The recognizer's input for one face: aligned by keypoints, else a square box crop."""
        height, width = self.crop_size
        if self.detector is None:
            return cv2.resize(image_rgb, (width, height), interpolation=cv2.INTER_AREA)
        if self.align and face.keypoints is not None:
            try:
                return alignment.align_face(image_rgb, face.keypoints, size=height)
            except ValueError:      # keypoints collapsed onto one point (tiny face): fall back to the box
                pass
        return alignment.crop_face(image_rgb, face.box, size=height)

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """L2-normalised embeddings of aligned crops (the predictor batches and applies model.yaml)."""
        return self.recognizer.embed(np.stack(crops), normalize=True)

    def embed_faces(self, images_rgb: Sequence[np.ndarray],
                    faces_per_image: Sequence[Sequence[Face]]) -> np.ndarray:
        """Embed the given faces of each image in one recognizer pass (batched across images); sets each
        ``face.embedding`` and returns them stacked (F×D, in image then face order)."""
        pairs = [(image, face) for image, faces in zip(images_rgb, faces_per_image) for face in faces]
        if not pairs:
            return np.zeros((0, self.rec_config.embedding_size or 0), np.float32)
        embeddings = self.embed([self.crop(image, face) for image, face in pairs])
        for (_, face), embedding in zip(pairs, embeddings):
            face.embedding = embedding
        return embeddings

    def match_faces(self, faces: Sequence[Face]) -> list[Match]:
        """Gallery vote for faces that have embeddings; sets ``name`` and ``similarity`` and returns the matches
        (empty without a gallery)."""
        if self.index is None or not faces:
            return []
        matches = self.match(np.stack([face.embedding for face in faces]))
        for face, match in zip(faces, matches):
            face.name, face.similarity = match.name, match.similarity
        return matches

    def analyze(self, image: ImageLike) -> list[Face]:
        """Every face in the image (left to right) with its box, keypoints and, when recognition is on, name and
        similarity."""
        return self.analyze_batch([image])[0]

    def analyze_batch(self, images: Sequence[ImageLike]) -> list[list[Face]]:
        """:meth:`analyze` for several images (paths or RGB arrays) at once: one list of faces per image."""
        images_rgb = [_as_image(image)[0] for image in images]
        faces_per_image = self.detect_batch(images_rgb)
        if self.recognizer is not None:
            self.embed_faces(images_rgb, faces_per_image)
            self.match_faces([face for faces in faces_per_image for face in faces])
        return faces_per_image

    def analyze_stream(self, images: Iterable[ImageLike], batch_size: Optional[int] = None) -> Iterator[list[Face]]:
        """Faces of each image of any iterable (a generator of frames, a list of paths), in order, analysed
        ``batch_size`` (default: the analyzer's) images at a time; holds one batch in memory."""
        size = self.batch_size if batch_size is None else int(batch_size)
        if size < 1:
            raise ToolkitError(f"batch_size must be >= 1, got {batch_size}")
        for batch in batched(images, size):
            yield from self.analyze_batch(batch)

    def draw(self, image_rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        return draw_faces(image_rgb, faces, font_path=self.font)

    # ---- gallery and pairs --------------------------------------------------------------------------------
    def embed_largest_face(self, image: ImageLike) -> tuple[Face, np.ndarray]:
        """(largest face, its aligned crop) with ``face.embedding`` set; ToolkitError naming a faceless file."""
        image_rgb, source = _as_image(image)
        face = largest_face(self.detect(image_rgb))
        if face is None:
            raise ToolkitError(f"{source}: no face found (detector threshold "
                               f"{getattr(self.detector, 'score_threshold', 'default')})")
        crop = self.crop(image_rgb, face)
        face.embedding = self.embed([crop])[0]
        return face, crop

    def compare(self, image1: ImageLike, image2: ImageLike, threshold: Optional[float] = None) -> CompareResult:
        """Cosine similarity of the largest face in each image, and same/different at ``threshold``."""
        if self.recognizer is None:
            raise ToolkitError("compare needs recognition enabled")
        source = self.rec_thresh_source if threshold is None else "given"
        threshold = self.rec_thresh if threshold is None else finite(threshold, "threshold")
        face1, crop1 = self.embed_largest_face(image1)
        face2, crop2 = self.embed_largest_face(image2)
        similarity = float(np.clip(face1.embedding @ face2.embedding, -1.0, 1.0))
        return CompareResult(similarity=similarity, distance=embedding_distance(similarity),
                             same_person=similarity >= threshold, threshold=threshold, faces=(face1, face2),
                             crops=(crop1, crop2), threshold_source=source)

    def build_index(self, img_dir: Optional[str] = None, label_file: Optional[str] = None,
                    output: Optional[str] = None, append: bool = False, progress: bool = True):
        """Gallery from an identity-folder tree or a ``path<TAB>name`` label file; see gallery_builder."""
        return build_gallery(self, img_dir=img_dir, label_file=label_file, output=output, append=append,
                             progress=progress)


__all__ = ["FaceAnalyzer", "DEFAULT_DET_MODEL", "DEFAULT_REC_MODEL"]
