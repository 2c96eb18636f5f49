"""Multi-face test photos from the real public-domain faces, and YuNet pseudo-ground truth for every test photo.

    python tests/data/make_photos.py            # writes photos/group.jpg, photos/crowd.jpg, photos_ground_truth.json

* ``photos/group.jpg`` (1280×720): the 9 real faces of faces/ and photos/ (heads cut with a soft oval) in two rows,
  faces ~90 px wide — a cast/team photo, where the full-range model sees each face at ~13 px.
* ``photos/crowd.jpg`` (1920×1080): 27 heads (the same people, mirrored and at 3 sizes: faces ~28, 40 and 56 px)
  on a real background (nonfaces/coffee.png) — CCTV-sized faces.
* ``photos_ground_truth.json``: for each photo in faces/ and photos/, the faces YuNet finds (box x1 y1 x2 y2,
  score, 5 landmarks in ARCFACE_TEMPLATE_5 order) through ``cv2.FaceDetectorYN`` with the shipped
  ``yunet/face_detection_yunet_2023mar.onnx`` — a peer detector, not our code, used as pseudo-ground truth.
Deterministic: the same inputs give the same files.
"""
from __future__ import annotations

import hashlib
import json
import pathlib

import cv2
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
YUNET = HERE / "yunet" / "face_detection_yunet_2023mar.onnx"
SOURCES = ["faces/astronaut.png", "faces/biden.jpg", "faces/grace_hopper.jpg", "faces/obama.jpg", "faces/obama2.jpg",
           "faces/obama3.jpg", "photos/cameraman.png", "photos/obama_partial_face.jpg",
           "photos/obama_partial_face2.jpg"]
SCORE_THRESHOLD = 0.7


def yunet(min_score: float = SCORE_THRESHOLD):
    return cv2.FaceDetectorYN.create(str(YUNET), "", (320, 320), min_score, 0.3, 5000)


def detect(detector, bgr: np.ndarray) -> list:
    """YuNet faces, largest first: dicts with box (x1, y1, x2, y2), score, landmarks (5×2)."""
    detector.setInputSize((bgr.shape[1], bgr.shape[0]))
    _, faces = detector.detect(bgr)
    out = []
    for face in [] if faces is None else sorted(faces, key=lambda f: -f[2] * f[3]):
        x, y, w, h = (float(v) for v in face[:4])
        out.append({"box": [round(v, 2) for v in (x, y, x + w, y + h)], "score": round(float(face[14]), 4),
                    "landmarks": [[round(float(a), 2), round(float(b), 2)] for a, b in face[4:14].reshape(5, 2)]})
    return out


def head(bgr: np.ndarray, face: dict, face_width: int) -> tuple:
    """(head patch, soft oval mask) scaled so the face box is ``face_width`` pixels wide."""
    x1, y1, x2, y2 = face["box"]
    scale = face_width / (x2 - x1)
    side = int(round(1.9 * face_width))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 - 0.08 * (y2 - y1)
    matrix = np.float32([[scale, 0, side / 2 - scale * cx], [0, scale, side / 2 - scale * cy]])
    patch = cv2.warpAffine(bgr, matrix, (side, side), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    mask = np.zeros((side, side), np.float32)
    cv2.ellipse(mask, (side // 2, side // 2), (int(side * 0.36), int(side * 0.46)), 0, 0, 360, 1.0, -1)
    return patch, cv2.GaussianBlur(mask, (0, 0), side * 0.04)[..., None]


def paste(canvas: np.ndarray, patch: np.ndarray, mask: np.ndarray, x: int, y: int) -> None:
    h, w = patch.shape[:2]
    region = canvas[y:y + h, x:x + w].astype(np.float32)
    canvas[y:y + h, x:x + w] = np.round(region * (1 - mask) + patch * mask).astype(np.uint8)


def heads(detector) -> list:
    out = []
    for name in SOURCES:
        bgr = cv2.imread(str(HERE / name), cv2.IMREAD_COLOR)
        out.append((bgr, detect(detector, bgr)[0]))
    return out


def group_photo(people) -> np.ndarray:
    canvas = np.zeros((720, 1280, 3), np.uint8)
    canvas[:] = np.linspace(200, 140, 720, dtype=np.float32)[:, None, None].astype(np.uint8)   # a plain backdrop
    for number, (bgr, face) in enumerate(people):
        row, column = divmod(number, 5)
        patch, mask = head(bgr, face, 90)
        paste(canvas, patch, mask, 40 + column * 240 + row * 120, 90 + row * 300)
    return canvas


def crowd_photo(people) -> np.ndarray:
    background = cv2.imread(str(HERE / "nonfaces" / "coffee.png"), cv2.IMREAD_COLOR)
    canvas = cv2.resize(background, (1920, 1080), interpolation=cv2.INTER_CUBIC)
    for row, face_width in enumerate((28, 40, 56)):
        for number, (bgr, face) in enumerate(people):
            if (number + row) % 2:
                bgr = np.ascontiguousarray(bgr[:, ::-1])
                x1, y1, x2, y2 = face["box"]
                face = {"box": [bgr.shape[1] - x2, y1, bgr.shape[1] - x1, y2]}
            patch, mask = head(bgr, face, face_width)
            paste(canvas, patch, mask, 60 + number * 205 + (row % 2) * 60, 120 + row * 300)
    return canvas


def main() -> None:
    detector = yunet()
    people = heads(detector)
    for name, image in (("group.jpg", group_photo(people)), ("crowd.jpg", crowd_photo(people))):
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        (HERE / "photos" / name).write_bytes(encoded.tobytes())
    photos = {}
    for path in sorted((HERE / "faces").iterdir()) + sorted((HERE / "photos").iterdir()):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        photos[f"{path.parent.name}/{path.name}"] = {"size": [bgr.shape[1], bgr.shape[0]],
                                                     "faces": detect(detector, bgr)}
    record = {"generator": f"tests/data/make_photos.py (cv2.FaceDetectorYN, OpenCV {cv2.__version__}, "
                           f"score >= {SCORE_THRESHOLD})",
              "model": {"file": "yunet/face_detection_yunet_2023mar.onnx",
                        "sha256": hashlib.sha256(YUNET.read_bytes()).hexdigest()},
              "convention": "box x1 y1 x2 y2; landmarks: image-left eye, image-right eye, nose tip, image-left "
                            "mouth corner, image-right mouth corner (ARCFACE_TEMPLATE_5 order), pixels",
              "photos": photos}
    (HERE / "photos_ground_truth.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print({name: len(entry["faces"]) for name, entry in photos.items()})


if __name__ == "__main__":
    main()
