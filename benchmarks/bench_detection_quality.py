"""Detection quality on real photos against YuNet pseudo-ground truth, per photo and per detector setting, and cost.

    python benchmarks/bench_detection_quality.py [--extra photo.jpg ...] [--repeats 5]

Ground truth: ``tests/data/photos_ground_truth.json`` (YuNet through ``cv2.FaceDetectorYN``, a peer detector; made
by ``tests/data/make_photos.py``); ``--extra`` photos get YuNet boxes the same way, live.  A detection is a hit
at IoU >= 0.5 with an unmatched YuNet face (boxes by falling score).  Settings: the full- and short-range models,
each alone (one pass), with the close-up pass, and with the close-up pass plus tiling ("auto" and fixed tiles).

Close-ups: every face of the real photos (faces/, photos/ but the composites) cut at 5 tightnesses (the face box
filling 60–100 % of a square and of a 3:4 frame) plus its 112×112 aligned crop; a close-up is found when exactly
one detection overlaps the face (IoU >= 0.3: a frame-filling box is clipped by the frame).

Cost: median wall time per photo over the six portraits of tests/data/faces (ordinary photos), as a ratio to the
plain single pass of the same model measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import time

import cv2
import numpy as np
from prettytable import PrettyTable

from arcface_paddle.core.boxes import box_iou
from arcface_paddle.core.images import read_image
from arcface_paddle.pipeline import face_alignment as al
from blazeface_paddle.inference.passes import MultiPassDetector
from blazeface_paddle.inference.predictor import DetectorPredictor

REPO = pathlib.Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
SETTINGS = [("one pass", dict(closeup=False, tiling=None)), ("+ close-up", dict(closeup=True, tiling=None)),
            ("+ close-up + tiles auto", dict(closeup=True, tiling="auto")),
            ("+ close-up + tiles 640", dict(closeup=True, tiling=640))]
FILLS = (0.6, 0.7, 0.8, 0.9, 1.0)


def matches(boxes: np.ndarray, truth: np.ndarray, iou: float = 0.5) -> int:
    if not len(boxes) or not len(truth):
        return 0
    overlaps = box_iou(boxes, truth)
    used, hits = set(), 0
    for row in overlaps:
        candidates = [j for j in np.argsort(-row) if j not in used and row[j] >= iou]
        if candidates:
            used.add(candidates[0])
            hits += 1
    return hits


def closeup_crops(image: np.ndarray, face: dict) -> list:
    """[(label, crop, expected face box in the crop)] for one face."""
    box = np.array(face["box"], np.float64)
    side = (box[2:] - box[:2]).max()
    centre = (box[:2] + box[2:]) / 2
    crops = []
    for fill in FILLS:
        for aspect in (1.0, 0.75):
            width = 256
            height = int(round(width / aspect))
            scale = width * fill / side
            matrix = np.array([[scale, 0, width / 2 - scale * centre[0]], [0, scale, height / 2 - scale * centre[1]]])
            crop = cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
            crops.append((f"{fill:.0%} {'square' if aspect == 1 else '3:4'}", crop, box.reshape(2, 2) * scale
                          + matrix[:, 2]))
    matrix = al.alignment_matrix(np.array(face["landmarks"], np.float64)).astype(np.float64)
    crops.append(("112 aligned", cv2.warpAffine(image, matrix, (112, 112)), box.reshape(2, 2) @ matrix[:, :2].T
                  + matrix[:, 2]))
    return [(label, crop, expected.reshape(-1)) for label, crop, expected in crops]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", nargs="*", default=[], help="more photos (YuNet run live for their ground truth)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    truth = json.loads((DATA / "photos_ground_truth.json").read_text())["photos"]
    photos = {name: (read_image(str(DATA / name)), np.array([f["box"] for f in entry["faces"]]).reshape(-1, 4))
              for name, entry in truth.items()}
    if args.extra:
        yunet = cv2.FaceDetectorYN.create(str(DATA / "yunet" / "face_detection_yunet_2023mar.onnx"), "", (320, 320),
                                          0.7, 0.3, 5000)
        for path in args.extra:
            image = read_image(path)
            yunet.setInputSize((image.shape[1], image.shape[0]))
            _, found = yunet.detect(np.ascontiguousarray(image[..., ::-1]))
            found = np.zeros((0, 4)) if found is None else found[:, :4]
            photos[pathlib.Path(path).name + " (extra)"] = (image, np.concatenate([found[:, :2], found[:, :2]
                                                                                    + found[:, 2:4]], axis=1))
    table = PrettyTable(["photo", "faces"] + [f"{variant} {name}" for variant in ("full", "short")
                                              for name, _ in SETTINGS])
    closeups = PrettyTable(["model", "setting"] + [f"{fill:.0%}" for fill in FILLS] + ["112 aligned", "duplicates"])
    costs = PrettyTable(["model", "setting", "ms / portrait (median)", "ratio to one pass"])
    detectors = {}
    for variant in ("full_range", "short_range"):
        predictor = DetectorPredictor(REPO / "inference_model" / f"blazeface_{variant}", cpu_threads=args.threads)
        detectors[variant] = [(name, MultiPassDetector(predictor, **options)) for name, options in SETTINGS]
    cells = {name: [] for name in photos}
    for variant, settings in detectors.items():
        for setting, detector in settings:
            for name, (image, boxes) in photos.items():
                found = np.array([d.box for d in detector.detect(image)]).reshape(-1, 4)
                hits = matches(found, boxes)
                cells[name].append(f"{hits}/{len(boxes)} ({len(found) - hits} fp)")
    for name, row in cells.items():
        table.add_row([name, len(photos[name][1])] + row)
    faces = [(photos[name][0], face) for name, entry in truth.items() if "group" not in name and "crowd" not in name
             for face in entry["faces"][:1]]
    for variant, settings in detectors.items():
        for setting, detector in settings[:2]:
            found = {}
            duplicates = 0
            for image, face in faces:
                for label, crop, expected in closeup_crops(image, face):
                    boxes = np.array([d.box for d in detector.detect(crop)]).reshape(-1, 4)
                    overlapping = int((box_iou(expected, boxes)[0] >= 0.3).sum()) if len(boxes) else 0
                    key = label.split()[0] if label != "112 aligned" else label
                    found.setdefault(key, []).append(overlapping >= 1)
                    duplicates += overlapping > 1
            closeups.add_row([variant, setting] + [f"{np.mean(v):.0%} of {len(v)}" for v in found.values()]
                             + [duplicates])
    portraits = [photos[name][0] for name in truth if name.startswith("faces/")]
    for variant, settings in detectors.items():
        times = {setting: [] for setting, _ in settings}
        for _ in range(args.repeats):
            for setting, detector in settings:                      # interleaved: background load hits all alike
                for image in portraits:
                    start = time.perf_counter()
                    detector.detect(image)
                    times[setting].append(time.perf_counter() - start)
        base = statistics.median(times[settings[0][0]])
        for setting, values in times.items():
            costs.add_row([variant, setting, f"{1000 * statistics.median(values):.1f}",
                           f"{statistics.median(values) / base:.2f}"])
    print("Recall (hits/faces at IoU 0.5 vs YuNet) and false positives per photo\n", table, sep="")
    print("Close-ups found (exactly one detection expected)\n", closeups, sep="")
    print("Cost on ordinary photos\n", costs, sep="")


if __name__ == "__main__":
    main()
