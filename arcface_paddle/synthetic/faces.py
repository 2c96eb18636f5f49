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

import numpy as np

from arcface_paddle.preprocessing import REC_IMAGE_SIZE
from arcface_paddle.synthetic.painter import (
    EYE_MID_TEMPLATE,
    UNIT_AT_112,
    draw_head,
    draw_neck,
    keypoints_of,
    painter_at,
)
from arcface_paddle.synthetic.people import Identity, sample_identity, sample_look
from arcface_paddle.synthetic.photo import background, photometric


class SyntheticFaces:
    """Seeded synthetic people: ``render(identity, index)`` is a pure function of (seed, identity, index)."""

    def __init__(self, num_identities: int, images_per_identity: int, seed: int = 0, image_size: int = REC_IMAGE_SIZE):
        if num_identities < 1 or images_per_identity < 1:
            raise ValueError("num_identities and images_per_identity must be >= 1")
        self.num_identities = int(num_identities)
        self.images_per_identity = int(images_per_identity)
        self.seed = int(seed)
        self.image_size = int(image_size)
        self._identities: dict[int, Identity] = {}
        self._noise: np.ndarray | None = None

    def _noise_bank(self, size: int) -> np.ndarray:
        if self._noise is None or self._noise.shape[0] < size + 32:
            rng = np.random.default_rng([self.seed, 0x4E])
            self._noise = rng.standard_normal((size + 32, size + 32, 3), dtype=np.float32)
        return self._noise

    def identity(self, identity: int) -> Identity:
        """The feature parameters of person ``identity`` (any int >= 0; depends only on seed and identity)."""
        if identity not in self._identities:
            rng = np.random.default_rng([self.seed, int(identity), 0x1D])
            self._identities[identity] = sample_identity(rng)
        return self._identities[identity]

    def _rng(self, identity: int, index: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, int(identity), int(index), stream])

    def render(self, identity: int, index: int) -> np.ndarray:
        """An aligned-crop style image (eyes near the ArcFace template) with background: H×W×3 uint8 RGB."""
        image, _ = self.render_with_keypoints(identity, index)
        return image

    def render_with_keypoints(self, identity: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``render`` plus the 6×2 pixel keypoints in MediaPipe order (right eye, left eye, nose tip,
        mouth centre, right ear, left ear; "right" = the person's right = image left)."""
        idt, rng = self.identity(identity), self._rng(identity, index, 0xA1)
        look = sample_look(rng)
        size = self.image_size
        k = size / REC_IMAGE_SIZE
        image = background(rng, size)
        scale = UNIT_AT_112 * k * look["scale"]
        painter = painter_at(image, None, scale, look, EYE_MID_TEMPLATE * k + look["shift"] * k, idt)
        draw_neck(painter, idt, rng)
        draw_head(painter, idt, look)
        keypoints = keypoints_of(painter, idt)
        return photometric(image, rng, self._noise_bank(size)), keypoints

    def render_rgba(self, identity: int, index: int, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """The whole head on a transparent canvas: (size×size×4 uint8, alpha = head mask; keypoints 6×2 pixels)."""
        idt, rng = self.identity(identity), self._rng(identity, index, 0xB2)
        look = sample_look(rng)
        look["shift"] = np.zeros(2)
        image = np.zeros((size, size, 3), np.uint8)
        mask = np.zeros((size, size), np.uint8)
        scale = size / 3.3 * min(look["scale"], 1.0)          # head incl. hair and ears fits in ~2.9 units
        eye_mid = np.array([size / 2, size / 2 + idt.eye_y * scale], np.float32)
        painter = painter_at(image, mask, scale, look, eye_mid, idt)
        draw_head(painter, idt, look)
        keypoints = keypoints_of(painter, idt)
        rgb = photometric(image, rng, None)
        return np.dstack([rgb, mask]), keypoints

    def sample_ids(self) -> list[tuple[int, int]]:
        return [(i, j) for i in range(self.num_identities) for j in range(self.images_per_identity)]

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

