"""Compose demo/query/group.jpg: three real portraits side by side (one person is not in the gallery).

obama2.jpg (Obama, a photo NOT in the gallery) | astronaut.png (Eileen Collins, NOT in the gallery at all:
the stranger, expected "unknown") | grace_hopper.jpg (in the gallery). Photos: tests/data/faces, see
demo/SOURCES.md. Crop squares are fixed (about 2.2× each face box) so the result is reproducible:

    python demo/make_group_photo.py
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
FACES = os.path.join(os.path.dirname(HERE), "tests", "data", "faces")
PANEL = 360
GAP = 24
# (file, square crop x1, y1, side) in the original photo's pixels
CROPS = [("obama2.jpg", 30, 180, 480), ("astronaut.png", 125, 20, 200), ("grace_hopper.jpg", 90, 40, 360)]


def main() -> None:
    canvas = Image.new("RGB", (3 * PANEL + 4 * GAP, PANEL + 2 * GAP), (235, 235, 235))
    for position, (name, x1, y1, side) in enumerate(CROPS):
        photo = Image.open(os.path.join(FACES, name)).convert("RGB")
        panel = photo.crop((x1, y1, x1 + side, y1 + side)).resize((PANEL, PANEL), Image.LANCZOS)
        canvas.paste(panel, (GAP + position * (PANEL + GAP), GAP))
    output = os.path.join(HERE, "query", "group.jpg")
    tmp = output + ".tmp.jpg"
    canvas.save(tmp, quality=92)
    os.replace(tmp, output)
    print(f"wrote {output} {np.asarray(canvas).shape}")


if __name__ == "__main__":
    main()
