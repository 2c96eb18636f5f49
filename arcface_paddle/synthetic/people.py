"""The people model of the synthetic face generator.

A person (:class:`Identity`) is a set of feature parameters sampled once from ``(seed, identity)``;
a look (:func:`sample_look`) is the per-image pose and expression.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_SKIN = np.array([[255, 224, 196], [241, 194, 160], [224, 172, 130], [198, 134, 96], [160, 102, 66],
                  [120, 76, 50], [88, 56, 38]], np.float32)
_HAIR = np.array([[20, 18, 16], [60, 40, 25], [105, 70, 40], [170, 130, 80], [215, 185, 120],
                  [150, 60, 30], [165, 165, 160], [235, 235, 230]], np.float32)
_IRIS = np.array([[70, 45, 25], [110, 75, 40], [60, 110, 160], [70, 120, 80], [110, 115, 120],
                  [30, 25, 20]], np.float32)
_LIPS = np.array([[190, 90, 90], [170, 70, 80], [150, 80, 70], [200, 120, 110], [120, 55, 55]], np.float32)


@dataclass(frozen=True)
class Identity:
    face_w: float
    face_h: float
    jaw: float
    skin: np.ndarray
    eye_y: float
    eye_dx: float
    eye_w: float
    eye_h: float
    iris: np.ndarray
    brow_gap: float
    brow_thick: float
    brow_arch: float
    brow_tilt: float
    nose_len: float
    nose_w: float
    mouth_dy: float
    mouth_w: float
    lip_thick: float
    smile: float
    lips: np.ndarray
    hair: np.ndarray
    hair_style: int
    hairline: float
    part: float
    ear_size: float
    glasses: int
    glasses_color: np.ndarray
    beard: int
    marks: np.ndarray                  # K×3: x, y, radius (units)
    mark_color: np.ndarray


def _color(rng, palette, jitter):
    base = palette[rng.integers(len(palette))]
    return np.clip(base + rng.normal(0, jitter, 3), 0, 255).astype(np.float32)


def sample_identity(rng: np.random.Generator) -> Identity:
    skin = _color(rng, _SKIN, 10)
    face_w = rng.uniform(0.86, 1.08)
    n_marks = rng.integers(1, 5)
    marks = np.stack([rng.uniform(-0.65, 0.65, n_marks) * face_w, rng.uniform(-0.55, 1.05, n_marks),
                      rng.uniform(0.025, 0.06, n_marks)], axis=1)
    return Identity(
        face_w=face_w, face_h=rng.uniform(1.18, 1.42), jaw=rng.uniform(0.0, 0.4), skin=skin,
        eye_y=rng.uniform(-0.22, -0.1), eye_dx=rng.uniform(0.36, 0.47), eye_w=rng.uniform(0.1, 0.15),
        eye_h=rng.uniform(0.4, 0.62), iris=_color(rng, _IRIS, 12),
        brow_gap=rng.uniform(0.13, 0.22), brow_thick=rng.uniform(0.03, 0.075), brow_arch=rng.uniform(-0.02, 0.08),
        brow_tilt=rng.uniform(-0.06, 0.06), nose_len=rng.uniform(0.4, 0.56), nose_w=rng.uniform(0.09, 0.19),
        mouth_dy=rng.uniform(0.86, 1.02), mouth_w=rng.uniform(0.26, 0.44), lip_thick=rng.uniform(0.04, 0.09),
        smile=rng.uniform(-0.04, 0.08), lips=np.clip(_color(rng, _LIPS, 12) * 0.5 + skin * 0.5 - 20, 0, 255),
        hair=_color(rng, _HAIR, 12), hair_style=int(rng.integers(6)), hairline=rng.uniform(-0.85, -0.55),
        part=rng.uniform(-12, 12), ear_size=rng.uniform(0.8, 1.2), glasses=int(rng.choice(3, p=[0.7, 0.15, 0.15])),
        glasses_color=_color(rng, np.array([[20, 20, 20], [120, 80, 40], [180, 180, 190]], np.float32), 10),
        beard=int(rng.choice(3, p=[0.7, 0.15, 0.15])), marks=marks.astype(np.float32),
        mark_color=np.clip(skin * 0.55, 0, 255),
    )


def sample_look(rng: np.random.Generator) -> dict:
    return {
        "angle": rng.normal(0, 7.0), "yaw": rng.uniform(-0.35, 0.35), "pitch": rng.uniform(-0.15, 0.15),
        "scale": np.exp(rng.normal(0, 0.07)), "shift": rng.normal(0, 3.0, 2),
        "eye_open": 0.1 if rng.random() < 0.04 else rng.uniform(0.7, 1.1), "gaze": rng.uniform(-1, 1),
        "smile": rng.normal(0, 0.025), "mouth_w": rng.uniform(0.9, 1.1), "open": rng.uniform(0, 0.03),
        "hair_gain": rng.uniform(0.9, 1.1),
    }
