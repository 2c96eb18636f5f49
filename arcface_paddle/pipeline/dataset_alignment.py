"""Aligning a raw identity tree for training: ``RAW/<identity>/<img>`` → ``ALIGNED/<identity>/<img>``.

Each image's face (the largest, or the one nearest the image centre) is detected with BlazeFace and warped to
the ArcFace template; the output tree is what ``tools/convert_image_bin.py`` reads. Work is spread over
processes, already-aligned files are skipped (so an interrupted run resumes), and images that are unreadable
or show no face are reported while the run goes on.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
from typing import Optional

import numpy as np
from tqdm import tqdm

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import is_image_path, read_image
from arcface_paddle.core.model_yaml import load_model_config
from arcface_paddle.core.safe_io import check_writable_folder, refuse_overlapping_folders
from arcface_paddle.pipeline.analyzer import DEFAULT_DET_MODEL
from arcface_paddle.pipeline.face_alignment import align_face, crop_face
from arcface_paddle.pipeline.media_io import write_image, write_json
from arcface_paddle.preprocessing import REC_IMAGE_SIZE
from blazeface_paddle.inference.passes import MultiPassDetector
from blazeface_paddle.inference.predictor import DetectorPredictor

SELECTIONS = ("largest", "center")
REPORT_NAME = "align_report.json"
MAX_CROP_SIZE = 1024


@dataclasses.dataclass
class AlignReport:
    aligned: int                         # crops written by this run
    already_done: int                    # outputs that existed (resumed run)
    failed: list                         # (relative path, reason): unreadable or no face
    report_path: Optional[str] = None


def pick_face(detections, image_shape, select: str = "largest"):
    """The detection to keep: largest box, or the box whose centre is nearest the image centre."""
    if not detections:
        return None
    if select == "largest":
        return max(detections, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
    height, width = image_shape[:2]
    return min(detections, key=lambda d: ((d.box[0] + d.box[2]) / 2 - width / 2) ** 2
               + ((d.box[1] + d.box[3]) / 2 - height / 2) ** 2)


def list_tree(input_dir: str) -> list[str]:
    """Relative paths of all images under ``input_dir`` (sorted)."""
    if not os.path.isdir(input_dir):
        raise ToolkitError(f"{input_dir}: input folder not found")
    found = []
    for root, dirs, files in os.walk(input_dir):
        dirs.sort()
        found.extend(os.path.relpath(os.path.join(root, name), input_dir) for name in sorted(files)
                     if is_image_path(name))
    if not found:
        raise ToolkitError(f"{input_dir}: no images found")
    return found


class _Aligner:
    """Per-process state: one detector, reused for every image this process handles."""

    def __init__(self, det_model, det_thresh, size, margin, select, cpu_threads):
        # the recognition pipeline's default passes (close-ups such as cropped ID photos found), so training crops
        # match the crops the pipeline feeds the recognizer
        self.detector = MultiPassDetector(DetectorPredictor(det_model, cpu_threads=cpu_threads,
                                                            score_threshold=det_thresh),
                                          tiling=None, refine_keypoints=False)
        self.size, self.margin, self.select = size, margin, select

    def __call__(self, job: tuple[str, str]) -> Optional[str]:
        """Align ``source`` into ``target``; the failure reason, or None when written."""
        source, target = job
        try:
            image = read_image(source)
        except ToolkitError as error:
            return str(error).split(": ", 1)[-1]
        face = pick_face(self.detector.detect(image), image.shape, self.select)
        if face is None:
            return "no face found"
        if face.keypoints is not None:
            crop = align_face(image, np.asarray(face.keypoints), size=self.size, margin=self.margin)
        else:
            crop = crop_face(image, face.box, size=self.size)
        try:
            write_image(target, crop)
        except OSError as error:
            return f"cannot write {target} ({error.strerror or error})"
        return None


_WORKER: Optional[_Aligner] = None


def _init_worker(*args) -> None:
    global _WORKER
    _WORKER = _Aligner(*args)


def _work(job):
    return _WORKER(job)


def align_dataset(input_dir: str, output_dir: str, size: int = REC_IMAGE_SIZE, margin: float = 0.0,
                  select: str = "largest", workers: int = 2, det_model: Optional[str] = None,
                  det_thresh: Optional[float] = None, progress: bool = True) -> AlignReport:
    """Align every image of ``input_dir`` into the same relative path under ``output_dir``."""
    if select not in SELECTIONS:
        raise ToolkitError(f"select must be one of {SELECTIONS}, got {select!r}")
    if not 16 <= size <= MAX_CROP_SIZE:
        raise ToolkitError(f"size must be 16 to {MAX_CROP_SIZE} pixels, got {size}")
    if not 0 <= margin < size / 2:
        raise ToolkitError(f"margin must be in [0, {size / 2}) pixels for a {size}-pixel crop, got {margin}")
    relative = list_tree(input_dir)
    # an output inside the input would be read back as an identity on the next (resumed) run, and vice versa
    refuse_overlapping_folders(input_dir, output_dir, "--input", "--output")
    jobs, already_done = [], 0
    for rel in relative:
        target = os.path.join(output_dir, rel)
        if os.path.isfile(target):
            already_done += 1
        else:
            jobs.append((os.path.join(input_dir, rel), target))
    check_writable_folder(output_dir)
    det_dir = det_model or DEFAULT_DET_MODEL
    if load_model_config(det_dir).task != "detection":     # checked here: a worker's error would be opaque
        raise ToolkitError(f"{det_dir}: model.yaml does not describe a detection model")
    workers = max(1, min(int(workers), len(jobs) or 1))
    init_args = (det_dir, det_thresh, size, margin, select, 1 if workers > 1 else 2)
    bar = tqdm(total=len(jobs), desc="aligning", unit="img", disable=not progress)
    if workers == 1:
        aligner = _Aligner(*init_args) if jobs else None
        results = (aligner(job) for job in jobs)
    else:
        # spawn: paddle's inference runtime is not fork-safe once initialised.
        pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                      initializer=_init_worker, initargs=init_args)
        results = pool.map(_work, jobs, chunksize=8)
    failed = []
    try:
        for (source, _), reason in zip(jobs, results):
            bar.update(1)
            if reason is not None:
                failed.append((os.path.relpath(source, input_dir), reason))
    finally:
        bar.close()
        if workers > 1:
            pool.shutdown(cancel_futures=True)
    report_path = os.path.join(output_dir, REPORT_NAME)
    write_json(report_path, {"input": os.path.abspath(input_dir), "size": size, "margin": margin,
                             "select": select, "aligned": len(jobs) - len(failed), "already_done": already_done,
                             "failed": [{"path": path, "reason": reason} for path, reason in failed]})
    return AlignReport(aligned=len(jobs) - len(failed), already_done=already_done, failed=failed,
                       report_path=report_path)
