"""Deterministic synthetic faces: N identities × M images, for tests and training demos.

Each identity is a stable set of facial features drawn from ``(seed, identity)`` only — face shape,
skin tone, eye spacing/size/colour, brows, nose, mouth, hair style and colour, ears, optional glasses,
beard or moustache, and a few identity-specific marks.  Every image of that identity redraws the same
person under a new nuisance draw from ``(seed, identity, index)``: in-plane rotation, small yaw and
pitch (features shift by their depth), scale, translation, expression, background, lighting gradient,
colour jitter, blur and noise.  Raw pixels therefore do not separate identities, while a trained
network can verify people it never saw (identities ``>= num_identities`` are such held-out people).

Faces are drawn straight at the output resolution with anti-aliased OpenCV primitives under one
similarity transform, so landmarks are exact and a 112×112 image costs about a millisecond.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from ..preprocessing import ARCFACE_TEMPLATE_5, REC_IMAGE_SIZE

# Canonical face frame ("units"): origin at the face centre, x to the image right, y down;
# the face half-width is about 1.  ``z`` is depth towards the camera, used for yaw/pitch shifts.
_UNIT_AT_112 = 42.0                               # pixels per unit in an aligned 112×112 crop
_EYE_MID_TEMPLATE = ARCFACE_TEMPLATE_5[:2].mean(axis=0)
_Z_EYE, _Z_NOSE, _Z_MOUTH, _Z_EAR, _Z_BROW = 0.55, 0.95, 0.6, -0.15, 0.6
_SHIFT = 4                                        # OpenCV sub-pixel bits
_SCALE = float(1 << _SHIFT)
_AA = cv2.LINE_AA

_SKIN = np.array([[255, 224, 196], [241, 194, 160], [224, 172, 130], [198, 134, 96], [160, 102, 66],
                  [120, 76, 50], [88, 56, 38]], np.float32)
_HAIR = np.array([[20, 18, 16], [60, 40, 25], [105, 70, 40], [170, 130, 80], [215, 185, 120],
                  [150, 60, 30], [165, 165, 160], [235, 235, 230]], np.float32)
_IRIS = np.array([[70, 45, 25], [110, 75, 40], [60, 110, 160], [70, 120, 80], [110, 115, 120],
                  [30, 25, 20]], np.float32)
_LIPS = np.array([[190, 90, 90], [170, 70, 80], [150, 80, 70], [200, 120, 110], [120, 55, 55]], np.float32)


@dataclass(frozen=True)
class _Identity:
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


def _sample_identity(rng: np.random.Generator) -> _Identity:
    skin = _color(rng, _SKIN, 10)
    face_w = rng.uniform(0.86, 1.08)
    n_marks = rng.integers(1, 5)
    marks = np.stack([rng.uniform(-0.65, 0.65, n_marks) * face_w, rng.uniform(-0.55, 1.05, n_marks),
                      rng.uniform(0.025, 0.06, n_marks)], axis=1)
    return _Identity(
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


class _Painter:
    """Draws canonical-frame shapes into an image (and optionally a mask) under pose + similarity."""

    def __init__(self, image, mask, scale, angle_deg, origin, yaw, pitch):
        self.image, self.mask = image, mask
        self.scale, self.angle = scale, angle_deg
        rad = np.deg2rad(angle_deg)
        rot = scale * np.array([[np.cos(rad), -np.sin(rad)], [np.sin(rad), np.cos(rad)]])
        self.cos_yaw = float(np.cos(yaw))
        # canonical (x, y, z) → pixels is linear: rotate·scale ∘ (x·cos yaw + z·sin yaw, y·cos pitch + z·sin pitch)
        self.matrix = (rot @ np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, np.cos(pitch), np.sin(pitch)]])).astype(np.float32)
        self.origin = np.asarray(origin, np.float32)

    def points(self, pts, z=0.0) -> np.ndarray:
        pts = np.asarray(pts, np.float32).reshape(-1, 2)
        m = self.matrix
        out = pts @ m[:, :2].T + self.origin
        if np.ndim(z) == 0:
            return out + float(z) * m[:, 2]
        return out + np.asarray(z, np.float32)[:, None] * m[:, 2]

    def _fixed(self, pts, z):
        return np.round(self.points(pts, z) * _SCALE).astype(np.int32)

    def ellipse(self, center, axes, color, z=0.0, angle=0.0, thickness=-1, start=0, end=360, mask=False):
        (m00, m01, m02), (m10, m11, m12) = self._rows
        x, y = center
        c = (int(round((m00 * x + m01 * y + m02 * z + self._ox) * _SCALE)),
             int(round((m10 * x + m11 * y + m12 * z + self._oy) * _SCALE)))
        ax = (max(1, int(axes[0] * self.cos_yaw * self.scale * _SCALE)), max(1, int(axes[1] * self.scale * _SCALE)))
        th = thickness if thickness < 0 else max(1, int(round(thickness * self.scale)))
        cv2.ellipse(self.image, c, ax, angle + self.angle, start, end, _rgb(color), th, _AA, _SHIFT)
        if mask and self.mask is not None:
            cv2.ellipse(self.mask, c, ax, angle + self.angle, start, end, 255, th, _AA, _SHIFT)

    @property
    def origin(self):
        return self._origin

    @origin.setter
    def origin(self, value):
        self._origin = np.asarray(value, np.float32)
        self._ox, self._oy = float(self._origin[0]), float(self._origin[1])
        self._rows = self.matrix.astype(float).tolist()

    def polygon(self, pts, color, z=0.0, mask=False):
        p = self._fixed(pts, z)
        cv2.fillPoly(self.image, [p], _rgb(color), _AA, _SHIFT)
        if mask and self.mask is not None:
            cv2.fillPoly(self.mask, [p], 255, _AA, _SHIFT)

    def polyline(self, pts, color, thickness, z=0.0, closed=False):
        th = max(1, int(round(thickness * self.scale)))
        cv2.polylines(self.image, [self._fixed(pts, z)], closed, _rgb(color), th, _AA, _SHIFT)


def _rgb(color):
    return (float(color[0]), float(color[1]), float(color[2]))


_CURVE_T = {n: np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in (5, 7)}


def _curve(x0, x1, y, bend, n=7):
    """Points on a parabola from (x0, y) to (x1, y) whose middle sits ``bend`` lower (y down)."""
    t = _CURVE_T[n]
    out = np.empty((n, 2), np.float32)
    out[:, 0] = x0 + (x1 - x0) * (t + 1) / 2
    out[:, 1] = y + bend * (1 - t * t)
    return out


_T = np.linspace(0, 2 * np.pi, 48, endpoint=False, dtype=np.float32)


def _face_outline(idt: _Identity) -> np.ndarray:
    s = np.sin(_T)
    narrow = 1 - idt.jaw * np.clip(s, 0, None) ** 2      # the jaw narrows towards the chin
    return np.stack([idt.face_w * np.cos(_T) * narrow, idt.face_h * s], axis=1)


def _draw_head(p: _Painter, idt: _Identity, look: dict) -> None:
    """Everything that belongs to the person, back to front."""
    hair, skin, dark_skin = idt.hair * look["hair_gain"], idt.skin, idt.skin * 0.8
    top = -idt.face_h
    if idt.hair_style in (3, 4):          # long hair behind the head
        p.polygon([[-idt.face_w * 1.15, top * 0.6], [idt.face_w * 1.15, top * 0.6],
                   [idt.face_w * (1.2 if idt.hair_style == 3 else 1.05), 1.35],
                   [-idt.face_w * (1.2 if idt.hair_style == 3 else 1.05), 1.35]], hair, z=-0.3, mask=True)
    if idt.hair_style != 5:               # hair mass over the skull
        p.ellipse((0, top * 0.45), (idt.face_w * 1.1, idt.face_h * 0.7), hair, z=-0.2, mask=True)
    for side in (-1, 1):                  # ears
        p.ellipse((side * idt.face_w * 0.97, idt.eye_y + 0.15), (0.13 * idt.ear_size, 0.24 * idt.ear_size),
                  dark_skin, z=_Z_EAR, mask=True)
    p.polygon(_face_outline(idt), skin, z=0.2, mask=True)
    for x, y, r in idt.marks:             # moles / freckles
        p.ellipse((x, y), (r, r), idt.mark_color, z=0.5)
    if idt.beard == 1:                    # full beard along the jaw
        jaw = _face_outline(idt)
        lower = jaw[(jaw[:, 1] > idt.eye_y + 0.45)]
        inner = _curve(-idt.mouth_w * 0.9, idt.mouth_w * 0.9, idt.eye_y + idt.mouth_dy - 0.12, 0.32)
        p.polygon(np.concatenate([lower, inner]), hair, z=0.45)
    eye_open = look["eye_open"]
    for side in (-1, 1):
        ex, ey = side * idt.eye_dx, idt.eye_y
        brow_y = ey - idt.brow_gap
        brow = _curve(ex - side * idt.eye_w * 1.3, ex + side * idt.eye_w * 1.5, brow_y, -idt.brow_arch, 5)
        brow[:, 1] += np.linspace(0, idt.brow_tilt, 5)
        p.polyline(brow, hair * 0.8, idt.brow_thick, z=_Z_BROW)
        eh = idt.eye_w * idt.eye_h * eye_open
        if eye_open < 0.25:
            p.polyline(_curve(ex - idt.eye_w, ex + idt.eye_w, ey, 0.02, 5), (40, 30, 30), 0.025, z=_Z_EYE)
            continue
        p.ellipse((ex, ey), (idt.eye_w, eh), (245, 245, 240), z=_Z_EYE)
        gaze = look["gaze"] * idt.eye_w * 0.3
        p.ellipse((ex + gaze, ey), (eh * 0.95, eh * 0.95), idt.iris, z=_Z_EYE)
        p.ellipse((ex + gaze, ey), (eh * 0.4, eh * 0.4), (15, 12, 12), z=_Z_EYE)
        p.ellipse((ex, ey), (idt.eye_w, eh), (50, 35, 30), z=_Z_EYE, thickness=0.025, start=180, end=360)
    nose_y = idt.eye_y + idt.nose_len
    p.polyline([[-0.06, idt.eye_y + 0.05], [-0.08, nose_y - 0.12], [-idt.nose_w * 0.6, nose_y - 0.02]],
               skin * 0.82, 0.03, z=[0.6, 0.85, 0.8])
    p.ellipse((0, nose_y - 0.05), (idt.nose_w * 0.55, 0.07), skin * 0.93, z=_Z_NOSE)
    for side in (-1, 1):
        p.ellipse((side * idt.nose_w * 0.45, nose_y), (idt.nose_w * 0.22, 0.035), skin * 0.45, z=_Z_NOSE - 0.1)
    mouth_y = idt.eye_y + idt.mouth_dy
    mw, smile = idt.mouth_w * look["mouth_w"], idt.smile + look["smile"]
    upper = _curve(-mw, mw, mouth_y - smile, smile - idt.lip_thick * 0.5)
    lower = _curve(mw, -mw, mouth_y - smile, smile + idt.lip_thick * 1.3)
    p.polygon(np.concatenate([upper, lower]), idt.lips, z=_Z_MOUTH)
    p.polyline(_curve(-mw, mw, mouth_y - smile, smile + look["open"]), idt.lips * 0.45, 0.02, z=_Z_MOUTH)
    if idt.beard == 2:                    # moustache
        p.polyline(_curve(-mw * 0.9, mw * 0.9, mouth_y - 0.1, -0.04, 5), hair, 0.07, z=_Z_MOUTH + 0.05)
    if idt.hair_style != 5:               # hair cap down to the hairline (flat edge tilted for a side part)
        hairline = idt.hairline - (0.2 if idt.hair_style == 1 else 0.0)
        p.ellipse((0, hairline), (idt.face_w * 1.06, hairline - top + 0.15), hair, z=-0.1,
                  angle=idt.part if idt.hair_style == 2 else 0.0, start=180, end=360, mask=True)
        if idt.hair_style == 4:           # fringe
            p.ellipse((0, hairline), (idt.face_w * 0.8, 0.2), hair, z=0.3, start=0, end=180)
    if idt.glasses:
        for side in (-1, 1):
            c = (side * idt.eye_dx, idt.eye_y)
            if idt.glasses == 1:
                p.ellipse(c, (idt.eye_w * 1.6, idt.eye_w * 1.25), idt.glasses_color, z=_Z_EYE + 0.1, thickness=0.035)
            else:
                w, h = idt.eye_w * 1.6, idt.eye_w * 1.1
                p.polyline([[c[0] - w, c[1] - h], [c[0] + w, c[1] - h], [c[0] + w, c[1] + h], [c[0] - w, c[1] + h]],
                           idt.glasses_color, 0.035, z=_Z_EYE + 0.1, closed=True)
        p.polyline([[-idt.eye_dx + idt.eye_w * 1.6, idt.eye_y - 0.03], [idt.eye_dx - idt.eye_w * 1.6, idt.eye_y - 0.03]],
                   idt.glasses_color, 0.03, z=_Z_EYE + 0.15)


def _keypoints(p: _Painter, idt: _Identity) -> np.ndarray:
    """MediaPipe order: right eye, left eye (the person's right = image left), nose tip, mouth centre, ears."""
    pts = [[-idt.eye_dx, idt.eye_y], [idt.eye_dx, idt.eye_y], [0, idt.eye_y + idt.nose_len],
           [0, idt.eye_y + idt.mouth_dy], [-idt.face_w * 0.95, idt.eye_y + 0.17], [idt.face_w * 0.95, idt.eye_y + 0.17]]
    return p.points(pts, [_Z_EYE, _Z_EYE, _Z_NOSE, _Z_MOUTH, _Z_EAR, _Z_EAR]).astype(np.float32)


def _sample_look(rng: np.random.Generator) -> dict:
    return {
        "angle": rng.normal(0, 7.0), "yaw": rng.uniform(-0.35, 0.35), "pitch": rng.uniform(-0.15, 0.15),
        "scale": np.exp(rng.normal(0, 0.07)), "shift": rng.normal(0, 3.0, 2),
        "eye_open": 0.1 if rng.random() < 0.04 else rng.uniform(0.7, 1.1), "gaze": rng.uniform(-1, 1),
        "smile": rng.normal(0, 0.025), "mouth_w": rng.uniform(0.9, 1.1), "open": rng.uniform(0, 0.03),
        "hair_gain": rng.uniform(0.9, 1.1),
    }


class SyntheticFaces:
    """Seeded synthetic people: ``render(identity, index)`` is a pure function of (seed, identity, index)."""

    def __init__(self, num_identities: int, images_per_identity: int, seed: int = 0, image_size: int = REC_IMAGE_SIZE):
        if num_identities < 1 or images_per_identity < 1:
            raise ValueError("num_identities and images_per_identity must be >= 1")
        self.num_identities = int(num_identities)
        self.images_per_identity = int(images_per_identity)
        self.seed = int(seed)
        self.image_size = int(image_size)
        self._identities: dict[int, _Identity] = {}
        self._noise: np.ndarray | None = None

    def _noise_bank(self, size: int) -> np.ndarray:
        if self._noise is None or self._noise.shape[0] < size + 32:
            rng = np.random.default_rng([self.seed, 0x4E])
            self._noise = rng.standard_normal((size + 32, size + 32, 3), dtype=np.float32)
        return self._noise

    def identity(self, identity: int) -> _Identity:
        if identity not in self._identities:
            rng = np.random.default_rng([self.seed, int(identity), 0x1D])
            self._identities[identity] = _sample_identity(rng)
        return self._identities[identity]

    def _rng(self, identity: int, index: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, int(identity), int(index), stream])

    def render(self, identity: int, index: int) -> np.ndarray:
        """An aligned-crop style image (eyes near the ArcFace template) with background: H×W×3 uint8 RGB."""
        image, _ = self.render_with_keypoints(identity, index)
        return image

    def render_with_keypoints(self, identity: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        idt, rng = self.identity(identity), self._rng(identity, index, 0xA1)
        look = _sample_look(rng)
        size = self.image_size
        k = size / REC_IMAGE_SIZE
        image = _background(rng, size)
        scale = _UNIT_AT_112 * k * look["scale"]
        painter = _painter_at(image, None, scale, look, _EYE_MID_TEMPLATE * k + look["shift"] * k, idt)
        _draw_neck(painter, idt, rng)
        _draw_head(painter, idt, look)
        keypoints = _keypoints(painter, idt)
        return _photometric(image, rng, self._noise_bank(size)), keypoints

    def render_rgba(self, identity: int, index: int, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """The whole head on a transparent canvas: (size×size×4 uint8, alpha = head mask; keypoints 6×2 pixels)."""
        idt, rng = self.identity(identity), self._rng(identity, index, 0xB2)
        look = _sample_look(rng)
        look["shift"] = np.zeros(2)
        image = np.zeros((size, size, 3), np.uint8)
        mask = np.zeros((size, size), np.uint8)
        scale = size / 3.3 * min(look["scale"], 1.0)          # head incl. hair and ears fits in ~2.9 units
        eye_mid = np.array([size / 2, size / 2 + idt.eye_y * scale], np.float32)
        painter = _painter_at(image, mask, scale, look, eye_mid, idt)
        _draw_head(painter, idt, look)
        keypoints = _keypoints(painter, idt)
        rgb = _photometric(image, rng, None)
        return np.dstack([rgb, mask]), keypoints

    def sample_ids(self) -> list[tuple[int, int]]:
        return [(i, j) for i in range(self.num_identities) for j in range(self.images_per_identity)]

    def write_identity_tree(self, root, identities=None, ext: str = ".jpg", progress: bool = False) -> list[str]:
        """``root/<identity:06d>/<index:04d>.jpg`` (sorted folder names give labels in identity order)."""
        from ..safe_io import atomic_save_bytes
        identities = list(range(self.num_identities) if identities is None else identities)
        written = []
        for identity in _progress(identities, progress, "identity tree"):
            for index in range(self.images_per_identity):
                rel = os.path.join(f"{int(identity):06d}", f"{index:04d}{ext}")
                atomic_save_bytes(os.path.join(root, rel), encode_rgb(self.render(identity, index), ext))
                written.append(rel)
        return written

    def write_shards(self, root, identities=None, progress: bool = False) -> int:
        """Shards + ``label.txt`` + ``classes.txt`` in the reference format; returns the image count."""
        from .shard_format import write_shard_dataset
        identities = list(range(self.num_identities) if identities is None else identities)
        records = ((f"{identity:06d}/{index:04d}.jpg", encode_rgb(self.render(identity, index), ".jpg"), label)
                   for label, identity in enumerate(_progress(identities, progress, "shards"))
                   for index in range(self.images_per_identity))
        return write_shard_dataset(root, records, class_names=[f"{i:06d}" for i in identities])

    def verification_pairs(self, identities, num_pairs: int) -> tuple[np.ndarray, np.ndarray]:
        """Half same-person, half different-person pairs, interleaved: (2·num_pairs×H×W×3, issame)."""
        identities = [int(i) for i in identities]
        if len(identities) < 2:
            raise ValueError("verification pairs need at least two identities")
        rng = np.random.default_rng([self.seed, len(identities), num_pairs, 0xC3])
        images, issame = [], []
        for pair in range(num_pairs):
            same = pair % 2 == 0
            a = identities[rng.integers(len(identities))]
            b = a if same else identities[(identities.index(a) + 1 + rng.integers(len(identities) - 1)) % len(identities)]
            # indices far beyond any training index, so pairs never reuse a training image
            ia, ib = 100_000 + 2 * pair, 100_000 + 2 * pair + 1
            images += [self.render(a, ia), self.render(b, ib)]
            issame.append(same)
        return np.stack(images), np.array(issame, dtype=bool)

    def write_verification_bin(self, path, identities, num_pairs: int) -> None:
        from .verification_bin import save_verification_bin
        images, issame = self.verification_pairs(identities, num_pairs)
        save_verification_bin(path, images, issame)


def _progress(items, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm import tqdm
    return tqdm(items, desc=desc, unit="identity", dynamic_ncols=True)


def _painter_at(image, mask, scale, look, eye_mid, idt) -> _Painter:
    painter = _Painter(image, mask, scale, look["angle"], (0, 0), look["yaw"], look["pitch"])
    painter.origin = np.asarray(eye_mid, np.float32) - painter.points([[0, idt.eye_y]], _Z_EYE)[0]
    return painter


def _draw_neck(p: _Painter, idt: _Identity, rng) -> None:
    w = idt.face_w * 0.55
    p.polygon([[-w, 0.5], [w, 0.5], [w * 1.05, 2.0], [-w * 1.05, 2.0]], idt.skin * 0.75, z=-0.2)
    shirt = rng.uniform(20, 235, 3)
    p.polygon([[-3, 1.55], [-w, 1.35], [0, 1.75], [w, 1.35], [3, 1.55], [3, 3], [-3, 3]], shirt, z=-0.3)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    grad = ramp[:, None] if rng.random() < 0.5 else ramp[None, :]
    image = (c0 + (c1 - c0) * grad[..., None]).astype(np.uint8)
    image = np.ascontiguousarray(np.broadcast_to(image, (size, size, 3)))
    for _ in range(rng.integers(1, 4)):
        center = tuple(int(v) for v in rng.uniform(0, size, 2))
        axes = tuple(int(v) for v in rng.uniform(size * 0.1, size * 0.5, 2))
        cv2.ellipse(image, center, axes, float(rng.uniform(0, 180)), 0, 360, _rgb(rng.uniform(0, 255, 3)), -1)
    return image


def _photometric(image: np.ndarray, rng: np.random.Generator, noise_bank: np.ndarray | None) -> np.ndarray:
    size = image.shape[0]
    theta = rng.uniform(0, 2 * np.pi)
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    light = np.float32(np.cos(theta)) * ramp[None, :] + np.float32(np.sin(theta)) * ramp[:, None]
    light *= np.float32(rng.uniform(0.0, 0.5))
    light += np.float32(rng.uniform(0.65, 1.35))
    out = image.astype(np.float32)
    out *= light[..., None]
    out *= rng.uniform(0.8, 1.2, 3).astype(np.float32)
    if noise_bank is not None:
        sigma = rng.uniform(0.0, 1.3)
        if sigma > 0.4:
            out = cv2.GaussianBlur(out, (0, 0), sigma)
        # a random window of a fixed Gaussian field: as good as fresh noise here, and 10× cheaper
        oy, ox = rng.integers(0, noise_bank.shape[0] - size + 1, 2)
        out += noise_bank[oy:oy + size, ox:ox + size] * np.float32(rng.uniform(0, 7))
    return np.clip(out, 0, 255).astype(np.uint8)


def encode_rgb(image_rgb: np.ndarray, ext: str = ".jpg", quality: int = 95) -> bytes:
    """RGB uint8 → encoded image file bytes (JPEG by default)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"cannot encode image as {ext}")
    return buf.tobytes()
