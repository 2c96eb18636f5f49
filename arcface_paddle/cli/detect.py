"""Detect faces in photos with an exported BlazeFace: a table, optional JSON and drawn images.

    python -m arcface_paddle.cli.detect photo.jpg [more.png ... | folder/] [--model inference_model/blazeface_full_range]
        [--threshold 0.6] [--nms weighted|hard] [--tile-size auto|off|640] [--no-closeup] [--refine-keypoints]
        [--json faces.json] [--draw out_dir]

The close-up pass (faces filling the frame) and automatic tiling (small faces in group photos) are on by default;
see docs/detection_quality.md for which model and options suit which photos.

With several photos a bad file does not stop the run: it is listed at the end and the exit status is 2.
"""
from __future__ import annotations

import json
import os
import sys

import cv2
import numpy as np
from prettytable import PrettyTable
from tqdm import tqdm

from arcface_paddle.cli.arguments import ArgumentParser
from arcface_paddle.cli.device_options import add_device_arguments, device_options
from arcface_paddle.core.errors import ToolkitError, reason_for, run_cli
from arcface_paddle.core.images import encode_image, list_images, read_image
from arcface_paddle.core.safe_io import (
    atomic_save_bytes,
    atomic_write,
    check_output_file,
    check_writable_folder,
    refuse_overwriting_inputs,
)
from arcface_paddle.core.shipped_models import DEFAULT_DETECTOR
from blazeface_paddle.inference.passes import MultiPassDetector, tiling_from_text
from blazeface_paddle.inference.predictor import DEFAULT_CPU_ENGINE, DetectorPredictor

KEYPOINT_COLOURS = [(255, 64, 64), (64, 64, 255), (64, 255, 64), (255, 255, 64), (255, 64, 255), (64, 255, 255)]


def draw_detections(image_rgb: np.ndarray, detections) -> np.ndarray:
    """A copy of the image with boxes, scores and the 6 keypoints drawn."""
    canvas = image_rgb.copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 400))
    for face in detections:
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 255, 0), thickness)
        cv2.putText(canvas, f"{face.score:.2f}", (x1, max(0, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * thickness, (0, 255, 0), thickness)
        for (x, y), colour in zip(face.keypoints, KEYPOINT_COLOURS):
            cv2.circle(canvas, (int(round(x)), int(round(y))), 2 * thickness, colour, -1)
    return canvas


def expand_inputs(paths) -> list[str]:
    """Photo paths, with each folder replaced by the images directly inside it (sorted)."""

    images = []
    for path in paths:
        images.extend(list_images(path) if os.path.isdir(path) else [path])
    return images


def detect_files(images, *, model: str = DEFAULT_DETECTOR, threshold: float | None = None, nms: str | None = None,
                 tile_size="auto", cpu_threads: int = 2, draw_dir: str | None = None,
                 failed: list | None = None, closeup: bool = True, refine_keypoints: bool = False,
                 det_engine: str = DEFAULT_CPU_ENGINE, **device) -> dict:
    """{image path: [Detection.as_dict(), ...]}; with ``draw_dir`` also writes ``<name>.jpg`` drawings.

    A file that cannot be read raises ToolkitError, unless ``failed`` is a list: then ``(path, reason)``
    is appended to it and the other files are still processed.  ``tile_size`` ("auto", "off" or pixels),
    ``closeup`` and ``refine_keypoints``: the passes of ``MultiPassDetector``.  ``det_engine``: OpenVINO or
    oneDNN on a CPU.  ``device``: ``use_gpu``, ``use_tensorrt``, ``precision``, ``gpu_id`` for the predictor.
    """

    if draw_dir:
        check_writable_folder(draw_dir)
        refuse_overwriting_inputs([drawn_path(draw_dir, path) for path in images], images)
    tiling = tiling_from_text(tile_size)
    predictor = DetectorPredictor(model, cpu_threads=cpu_threads, score_threshold=threshold, nms=nms,
                                  cpu_engine=det_engine, **device)
    detector = MultiPassDetector(predictor, closeup=closeup, tiling=tiling, refine_keypoints=refine_keypoints)
    results = {}
    for path in tqdm(images, desc="detecting", disable=len(images) < 5):
        try:
            image = read_image(path)
        except ToolkitError as error:
            if failed is None:
                raise
            failed.append((path, reason_for(error, path)))
            continue
        faces = detector.detect(image)
        results[path] = [face.as_dict() for face in faces]
        if draw_dir:
            atomic_save_bytes(drawn_path(draw_dir, path), encode_image(draw_detections(image, faces), source=path))
    return results


def drawn_path(draw_dir: str, image_path: str) -> str:
    return os.path.join(draw_dir, os.path.splitext(os.path.basename(image_path))[0] + ".jpg")


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+",
                        help="photos or folders of photos (jpg/png/...; gray, RGBA and 16-bit are fine)")
    parser.add_argument("--model", default=DEFAULT_DETECTOR, help="exported BlazeFace folder (default: full range)")
    parser.add_argument("--threshold", type=float, default=None, help="score threshold (default: model.yaml's)")
    parser.add_argument("--nms", choices=["weighted", "hard"], default=None, help="default: weighted (MediaPipe)")
    parser.add_argument("--tile-size", default="auto",
                        help="'auto' (default: tiles only photos whose first pass found small faces), 'off', or a "
                             "tile side in pixels to always scan (e.g. 320 for CCTV-sized faces)")
    parser.add_argument("--no-closeup", action="store_true",
                        help="no second pass on a padded canvas when nothing is found (faces filling the frame)")
    parser.add_argument("--refine-keypoints", action="store_true",
                        help="re-estimate each face's keypoints on a close crop (what alignment uses)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    add_device_arguments(parser)
    parser.add_argument("--json", default=None, help="write all detections to this JSON file")
    parser.add_argument("--draw", default=None, help="write drawn copies of the images into this folder")
    args = parser.parse_args(argv)
    images = expand_inputs(args.images)
    if args.json:
        check_output_file(args.json, "--json file")
        refuse_overwriting_inputs([args.json], images)
    # One photo: its error is the answer.  Several: report bad files at the end and keep going.
    failed = [] if len(images) > 1 else None
    results = detect_files(images, model=args.model, threshold=args.threshold, nms=args.nms,
                           tile_size=args.tile_size, cpu_threads=args.threads, draw_dir=args.draw, failed=failed,
                           closeup=not args.no_closeup, refine_keypoints=args.refine_keypoints, **device_options(args))
    table = PrettyTable(["image", "faces", "best score", "boxes (x1, y1, x2, y2)"])
    for path, faces in results.items():
        boxes = "; ".join(",".join(f"{v:.0f}" for v in face["box"]) for face in faces)
        table.add_row([path, len(faces), f"{faces[0]['score']:.3f}" if faces else "-", boxes or "-"])
    print(table)
    if args.json:
        with atomic_write(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
        print(f"wrote {args.json}")
    if failed:
        for path, reason in failed:
            print(f"failed {path}: {reason}", file=sys.stderr)
        raise ToolkitError(f"{len(failed)} of {len(images)} images could not be read (listed above)")
    return 0


if __name__ == "__main__":
    run_cli(main)
