"""Drawing side of the synthetic face generator: the painter and the parts of a head.

People and looks come from :mod:`.people`; backgrounds and photometric nuisances from :mod:`.photo`.
:class:`Painter` maps canonical
face units (origin at the face centre, x right, y down, z towards the camera) to pixels through one
linear map — yaw/pitch shift features by their depth, then rotation, scale and translation — and draws
anti-aliased OpenCV primitives at sub-pixel precision, so landmarks are exact.
"""
from __future__ import annotations

import cv2
import numpy as np

from arcface_paddle.preprocessing import ARCFACE_TEMPLATE_5
from arcface_paddle.synthetic.people import Identity

# Canonical face frame ("units"): origin at the face centre, x to the image right, y down;
# the face half-width is about 1.  ``z`` is depth towards the camera, used for yaw/pitch shifts.
UNIT_AT_112 = 42.0                               # pixels per unit in an aligned 112×112 crop
EYE_MID_TEMPLATE = ARCFACE_TEMPLATE_5[:2].mean(axis=0)
_Z_EYE, _Z_NOSE, _Z_MOUTH, _Z_EAR, _Z_BROW = 0.55, 0.95, 0.6, -0.15, 0.6
_SHIFT = 4                                        # OpenCV sub-pixel bits
_SCALE = float(1 << _SHIFT)
_AA = cv2.LINE_AA

class Painter:
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


def _face_outline(idt: Identity) -> np.ndarray:
    s = np.sin(_T)
    narrow = 1 - idt.jaw * np.clip(s, 0, None) ** 2      # the jaw narrows towards the chin
    return np.stack([idt.face_w * np.cos(_T) * narrow, idt.face_h * s], axis=1)


def draw_head(p: Painter, idt: Identity, look: dict) -> None:
    """Everything that belongs to the person, back to front."""
    hair = idt.hair * look["hair_gain"]
    _draw_hair_back(p, idt, hair)
    _draw_face(p, idt, hair)
    for side in (-1, 1):
        _draw_eye(p, idt, look, side, hair)
    _draw_nose(p, idt)
    _draw_mouth(p, idt, look, hair)
    _draw_hair_front(p, idt, hair)
    if idt.glasses:
        _draw_glasses(p, idt)


def _draw_hair_back(p: Painter, idt: Identity, hair) -> None:
    top = -idt.face_h
    if idt.hair_style in (3, 4):          # long hair behind the head
        p.polygon([[-idt.face_w * 1.15, top * 0.6], [idt.face_w * 1.15, top * 0.6],
                   [idt.face_w * (1.2 if idt.hair_style == 3 else 1.05), 1.35],
                   [-idt.face_w * (1.2 if idt.hair_style == 3 else 1.05), 1.35]], hair, z=-0.3, mask=True)
    if idt.hair_style != 5:               # hair mass over the skull
        p.ellipse((0, top * 0.45), (idt.face_w * 1.1, idt.face_h * 0.7), hair, z=-0.2, mask=True)


def _draw_face(p: Painter, idt: Identity, hair) -> None:
    skin, dark_skin = idt.skin, idt.skin * 0.8
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


def _draw_eye(p: Painter, idt: Identity, look: dict, side: int, hair) -> None:
    """Brow and eye on one side (-1: the person's right, image left)."""
    eye_open = look["eye_open"]
    ex, ey = side * idt.eye_dx, idt.eye_y
    brow_y = ey - idt.brow_gap
    brow = _curve(ex - side * idt.eye_w * 1.3, ex + side * idt.eye_w * 1.5, brow_y, -idt.brow_arch, 5)
    brow[:, 1] += np.linspace(0, idt.brow_tilt, 5)
    p.polyline(brow, hair * 0.8, idt.brow_thick, z=_Z_BROW)
    eh = idt.eye_w * idt.eye_h * eye_open
    if eye_open < 0.25:                   # blink
        p.polyline(_curve(ex - idt.eye_w, ex + idt.eye_w, ey, 0.02, 5), (40, 30, 30), 0.025, z=_Z_EYE)
        return
    p.ellipse((ex, ey), (idt.eye_w, eh), (245, 245, 240), z=_Z_EYE)
    gaze = look["gaze"] * idt.eye_w * 0.3
    p.ellipse((ex + gaze, ey), (eh * 0.95, eh * 0.95), idt.iris, z=_Z_EYE)
    p.ellipse((ex + gaze, ey), (eh * 0.4, eh * 0.4), (15, 12, 12), z=_Z_EYE)
    p.ellipse((ex, ey), (idt.eye_w, eh), (50, 35, 30), z=_Z_EYE, thickness=0.025, start=180, end=360)


def _draw_nose(p: Painter, idt: Identity) -> None:
    skin = idt.skin
    nose_y = idt.eye_y + idt.nose_len
    p.polyline([[-0.06, idt.eye_y + 0.05], [-0.08, nose_y - 0.12], [-idt.nose_w * 0.6, nose_y - 0.02]],
               skin * 0.82, 0.03, z=[0.6, 0.85, 0.8])
    p.ellipse((0, nose_y - 0.05), (idt.nose_w * 0.55, 0.07), skin * 0.93, z=_Z_NOSE)
    for side in (-1, 1):
        p.ellipse((side * idt.nose_w * 0.45, nose_y), (idt.nose_w * 0.22, 0.035), skin * 0.45, z=_Z_NOSE - 0.1)


def _draw_mouth(p: Painter, idt: Identity, look: dict, hair) -> None:
    mouth_y = idt.eye_y + idt.mouth_dy
    mw, smile = idt.mouth_w * look["mouth_w"], idt.smile + look["smile"]
    upper = _curve(-mw, mw, mouth_y - smile, smile - idt.lip_thick * 0.5)
    lower = _curve(mw, -mw, mouth_y - smile, smile + idt.lip_thick * 1.3)
    p.polygon(np.concatenate([upper, lower]), idt.lips, z=_Z_MOUTH)
    p.polyline(_curve(-mw, mw, mouth_y - smile, smile + look["open"]), idt.lips * 0.45, 0.02, z=_Z_MOUTH)
    if idt.beard == 2:                    # moustache
        p.polyline(_curve(-mw * 0.9, mw * 0.9, mouth_y - 0.1, -0.04, 5), hair, 0.07, z=_Z_MOUTH + 0.05)


def _draw_hair_front(p: Painter, idt: Identity, hair) -> None:
    top = -idt.face_h
    if idt.hair_style != 5:               # hair cap down to the hairline (flat edge tilted for a side part)
        hairline = idt.hairline - (0.2 if idt.hair_style == 1 else 0.0)
        p.ellipse((0, hairline), (idt.face_w * 1.06, hairline - top + 0.15), hair, z=-0.1,
                  angle=idt.part if idt.hair_style == 2 else 0.0, start=180, end=360, mask=True)
        if idt.hair_style == 4:           # fringe
            p.ellipse((0, hairline), (idt.face_w * 0.8, 0.2), hair, z=0.3, start=0, end=180)


def _draw_glasses(p: Painter, idt: Identity) -> None:
    for side in (-1, 1):
        c = (side * idt.eye_dx, idt.eye_y)
        if idt.glasses == 1:              # round frames
            p.ellipse(c, (idt.eye_w * 1.6, idt.eye_w * 1.25), idt.glasses_color, z=_Z_EYE + 0.1, thickness=0.035)
        else:                             # rectangular frames
            w, h = idt.eye_w * 1.6, idt.eye_w * 1.1
            p.polyline([[c[0] - w, c[1] - h], [c[0] + w, c[1] - h], [c[0] + w, c[1] + h], [c[0] - w, c[1] + h]],
                       idt.glasses_color, 0.035, z=_Z_EYE + 0.1, closed=True)
    p.polyline([[-idt.eye_dx + idt.eye_w * 1.6, idt.eye_y - 0.03], [idt.eye_dx - idt.eye_w * 1.6, idt.eye_y - 0.03]],
               idt.glasses_color, 0.03, z=_Z_EYE + 0.15)


def keypoints_of(p: Painter, idt: Identity) -> np.ndarray:
    """MediaPipe order: right eye, left eye (the person's right = image left), nose tip, mouth centre, ears."""
    pts = [[-idt.eye_dx, idt.eye_y], [idt.eye_dx, idt.eye_y], [0, idt.eye_y + idt.nose_len],
           [0, idt.eye_y + idt.mouth_dy], [-idt.face_w * 0.95, idt.eye_y + 0.17], [idt.face_w * 0.95, idt.eye_y + 0.17]]
    return p.points(pts, [_Z_EYE, _Z_EYE, _Z_NOSE, _Z_MOUTH, _Z_EAR, _Z_EAR]).astype(np.float32)


def painter_at(image, mask, scale, look, eye_mid, idt) -> Painter:
    painter = Painter(image, mask, scale, look["angle"], (0, 0), look["yaw"], look["pitch"])
    painter.origin = np.asarray(eye_mid, np.float32) - painter.points([[0, idt.eye_y]], _Z_EYE)[0]
    return painter


def draw_neck(p: Painter, idt: Identity, rng) -> None:
    w = idt.face_w * 0.55
    p.polygon([[-w, 0.5], [w, 0.5], [w * 1.05, 2.0], [-w * 1.05, 2.0]], idt.skin * 0.75, z=-0.2)
    shirt = rng.uniform(20, 235, 3)
    p.polygon([[-3, 1.55], [-w, 1.35], [0, 1.75], [w, 1.35], [3, 1.55], [3, 3], [-3, 3]], shirt, z=-0.3)
