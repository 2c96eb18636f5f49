"""Face alignment: a similarity transform from detector keypoints to the ArcFace 112×112 template.

The transform (rotation + uniform scale + translation) is the least-squares fit of Umeyama (1991),
"Least-squares estimation of transformation parameters between two point patterns", in pure numpy.
Keypoint conventions accepted by :func:`template_for`:

* 6 points (BlazeFace, MediaPipe order): right_eye, left_eye, nose_tip, mouth_center, right_ear,
  left_ear — "right" is the person's right, which is the image LEFT.  BlazeFace has no mouth corners, so
  :func:`five_points_from_blazeface` estimates the 5 ArcFace landmarks from all 6 keypoints with a linear
  map fitted on real faces against an independent landmark model (YuNet; ``landmark_map.py``,
  docs/detection_quality.md), and the face is aligned on ``ARCFACE_TEMPLATE_5`` like any 5-point face.
* 4 points: the first four BlazeFace points, on ``ARCFACE_TEMPLATE_4`` (mouth centre = mean of the corners).
* 5 points (InsightFace / RetinaFace / the landmarks json): image-left eye, image-right eye, nose tip,
  image-left mouth corner, image-right mouth corner → ``ARCFACE_TEMPLATE_5``.
"""
from __future__ import annotations

import cv2
import numpy as np

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.pipeline import landmark_map
from arcface_paddle.preprocessing import ARCFACE_TEMPLATE_4, ARCFACE_TEMPLATE_5, REC_IMAGE_SIZE


def umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2×3 matrix M of the similarity transform minimising sum ||M·[src;1] - dst||² (Umeyama 1991)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f"need two matching N×2 point sets with N >= 2, got {src.shape} and {dst.shape}")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c ** 2).sum() / len(src)
    if src_var < 1e-12:
        raise ValueError("source points coincide; no transform can be estimated")
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    # Reflection guard: a mirror image is not a similarity transform of a face.
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    scale = (singular * sign).sum() / src_var
    translation = dst_mean - scale * rotation @ src_mean
    return np.concatenate([scale * rotation, translation[:, None]], axis=1).astype(np.float32)


def template_for(num_points: int, size: int = REC_IMAGE_SIZE, margin: float = 0.0) -> np.ndarray:
    """Template points in a ``size``×``size`` crop for the given keypoint convention.

    ``margin`` (pixels of the output crop) shrinks the face towards the centre so the crop keeps
    that much extra context on each side; 0 is the standard ArcFace crop.
    """
    if num_points == 4:
        template = ARCFACE_TEMPLATE_4
    elif num_points in (5, 6):          # 6: BlazeFace keypoints, aligned through five_points_from_blazeface
        template = ARCFACE_TEMPLATE_5
    else:
        raise ToolkitError(f"alignment needs 4, 5 or 6 keypoints (BlazeFace or 5-point), got {num_points}")
    if not 0 <= margin < size / 2:
        raise ToolkitError(f"margin must be in [0, {size / 2}) pixels for a {size}-pixel crop, got {margin}")
    scale = (size - 2.0 * margin) / REC_IMAGE_SIZE
    return (template * scale + margin).astype(np.float32)


def five_points_from_blazeface(keypoints: np.ndarray, model: dict | None = None) -> np.ndarray:
    """The 5 ArcFace landmarks (5×2, ``ARCFACE_TEMPLATE_5`` order) estimated from BlazeFace's 6 keypoints.

    ``model`` (mean_shape, x_mean, y_mean, weights) defaults to the fitted :mod:`arcface_paddle.pipeline.landmark_map`.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    if keypoints.shape != (6, 2):
        raise ToolkitError(f"BlazeFace gives 6 keypoints, got {len(keypoints)}")
    if model is None:
        model = dict(mean_shape=landmark_map.MEAN_SHAPE, x_mean=landmark_map.X_MEAN, y_mean=landmark_map.Y_MEAN,
                     weights=landmark_map.WEIGHTS)
    return apply_landmark_map(keypoints, model)


def apply_landmark_map(points: np.ndarray, model: dict) -> np.ndarray:
    """A fitted linear map from N points to the 5 ArcFace landmarks, applied in the frame of its mean shape.

    The points are brought onto ``model["mean_shape"]`` (N×2) by a similarity transform, mapped linearly there
    (``(flat - x_mean) @ weights + y_mean``), and the result is taken back: the estimate turns, scales and moves
    with the face.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    to_mean = umeyama_similarity(points, model["mean_shape"]).astype(np.float64)
    normalised = (points @ to_mean[:, :2].T + to_mean[:, 2]).ravel()
    five = ((normalised - model["x_mean"]) @ model["weights"] + model["y_mean"]).reshape(5, 2)
    return ((five - to_mean[:, 2]) @ np.linalg.inv(to_mean[:, :2]).T).astype(np.float32)


def keypoints_for_template(keypoints: np.ndarray) -> np.ndarray:
    """The points that correspond to :func:`template_for` rows: BlazeFace's 6 become the 5 ArcFace landmarks."""
    keypoints = np.asarray(keypoints, dtype=np.float32).reshape(-1, 2)
    return five_points_from_blazeface(keypoints) if len(keypoints) == 6 else keypoints


def alignment_matrix(keypoints: np.ndarray, size: int = REC_IMAGE_SIZE, margin: float = 0.0) -> np.ndarray:
    """2×3 matrix mapping image pixels to the aligned crop for one face's keypoints."""
    points = keypoints_for_template(keypoints)
    template = template_for(len(points), size=size, margin=margin)
    return umeyama_similarity(points, template)


def align_face(image: np.ndarray, keypoints: np.ndarray, size: int = REC_IMAGE_SIZE,
               margin: float = 0.0) -> np.ndarray:
    """Warp one face to a ``size``×``size`` crop with its keypoints on the ArcFace template."""
    matrix = alignment_matrix(keypoints, size=size, margin=margin)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)


def crop_face(image: np.ndarray, box, size: int = REC_IMAGE_SIZE) -> np.ndarray:
    """Without alignment: a square crop around ``box`` (x1, y1, x2, y2), resized to ``size``.

    Used for ``--no-align`` and for detectors without keypoints; out-of-image parts are black.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1, 1.0)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    scale = size / side
    matrix = np.array([[scale, 0, size / 2 - scale * cx], [0, scale, size / 2 - scale * cy]], dtype=np.float32)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)
