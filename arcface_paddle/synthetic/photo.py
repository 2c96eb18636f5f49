"""Photographic nuisances of the synthetic face generator: backgrounds, lighting, colour, blur and noise."""
from __future__ import annotations

import cv2
import numpy as np


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    grad = ramp[:, None] if rng.random() < 0.5 else ramp[None, :]
    image = (c0 + (c1 - c0) * grad[..., None]).astype(np.uint8)
    image = np.ascontiguousarray(np.broadcast_to(image, (size, size, 3)))
    for _ in range(rng.integers(1, 4)):
        center = tuple(int(v) for v in rng.uniform(0, size, 2))
        axes = tuple(int(v) for v in rng.uniform(size * 0.1, size * 0.5, 2))
        cv2.ellipse(image, center, axes, float(rng.uniform(0, 180)), 0, 360, tuple(float(v) for v in rng.uniform(0, 255, 3)), -1)
    return image


def photometric(image: np.ndarray, rng: np.random.Generator, noise_bank: np.ndarray | None) -> np.ndarray:
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
