"""One-off: reference SFace embeddings from the ORIGINAL runtimes, stored for the tests.

For each photo in tests/data/faces: the 112×112 crop aligned (arcface_paddle.pipeline.face_alignment.align_face)
from the landmarks in faces_landmarks.json, and its 128-d embedding from (1) onnxruntime running the original
``face_recognition_sface_2021dec.onnx`` (fed RGB, as OpenCV does) and (2) ``cv2.FaceRecognizerSF.feature`` on
the same crop as BGR.  Tests compare our imported network and the shipped inference model against these,
without needing the ONNX file.  Re-run only if the photos, landmarks or alignment change:

    python tests/data/make_sface_reference.py --onnx /path/to/face_recognition_sface_2021dec.onnx
"""
from __future__ import annotations

import argparse
import hashlib
import json
import pathlib

import cv2
import numpy as np

from arcface_paddle.pipeline.face_alignment import align_face

HERE = pathlib.Path(__file__).resolve().parent


def aligned_crops(faces_dir: pathlib.Path, landmarks_json: pathlib.Path):
    """(names, N×112×112×3 uint8 RGB crops) in file-name order."""
    record = json.loads(landmarks_json.read_text(encoding="utf-8"))["faces"]
    names = sorted(record)
    crops = []
    for name in names:
        rgb = cv2.cvtColor(cv2.imread(str(faces_dir / name), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        crops.append(align_face(rgb, np.asarray(record[name]["landmarks"], np.float32)))
    return names, np.stack(crops)


def main() -> None:
    import onnxruntime as ort

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", required=True, help="face_recognition_sface_2021dec.onnx")
    parser.add_argument("--output", default=str(HERE / "sface_reference.npz"))
    args = parser.parse_args()
    names, crops = aligned_crops(HERE / "faces", HERE / "faces_landmarks.json")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    # The graph subtracts 127.5 and multiplies by 1/128 itself: feed raw RGB pixels, one at a time (batch 1).
    onnxruntime_embeddings = np.concatenate([
        session.run(None, {input_name: crop.transpose(2, 0, 1)[None].astype(np.float32)})[0] for crop in crops])
    recognizer = cv2.FaceRecognizerSF.create(args.onnx, "")
    opencv_embeddings = np.concatenate([recognizer.feature(np.ascontiguousarray(crop[:, :, ::-1])).reshape(1, -1)
                                        for crop in crops])
    np.savez_compressed(args.output, names=np.array(names), crops=crops,
                        onnxruntime=onnxruntime_embeddings.astype(np.float32),
                        opencv=opencv_embeddings.astype(np.float32),
                        onnx_sha256=np.array(hashlib.sha256(pathlib.Path(args.onnx).read_bytes()).hexdigest()))
    cosine = (onnxruntime_embeddings * opencv_embeddings).sum(1) / (
        np.linalg.norm(onnxruntime_embeddings, axis=1) * np.linalg.norm(opencv_embeddings, axis=1))
    print(f"wrote {args.output}: {len(names)} faces; onnxruntime vs OpenCV cosine min {cosine.min():.6f}")


if __name__ == "__main__":
    main()
