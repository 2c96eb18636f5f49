"""What the pipeline reports: a :class:`Face` (box, keypoints, name, similarity) and a :class:`CompareResult`."""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np


@dataclasses.dataclass
class Face:
    box: tuple                                  # x1, y1, x2, y2 in image pixels
    score: float                                # detector confidence (1.0 when no detector ran)
    keypoints: Optional[np.ndarray] = None      # K×2 pixels (BlazeFace: 6, MediaPipe order)
    name: Optional[str] = None                  # identity, "unknown", or None when not matched
    similarity: Optional[float] = None          # cosine similarity of the match
    embedding: Optional[np.ndarray] = None      # L2-normalised recognizer output
    track_id: Optional[int] = None              # video with tracking: the track this face belongs to

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])

    def to_dict(self) -> dict:
        """JSON-ready summary (no embedding)."""
        return {"box": [round(float(v), 2) for v in self.box], "score": round(float(self.score), 4),
                "keypoints": None if self.keypoints is None else np.round(self.keypoints.astype(np.float64), 2).tolist(),
                "name": self.name,
                "similarity": None if self.similarity is None else round(float(self.similarity), 4)}


@dataclasses.dataclass
class CompareResult:
    similarity: float
    distance: float              # Euclidean distance of the normalised embeddings, sqrt(2 - 2·similarity)
    same_person: bool
    threshold: float
    faces: tuple                 # the Face used in each image
    crops: tuple                 # the aligned crops fed to the recognizer (RGB uint8)
    threshold_source: str = "given"   # where the threshold came from (given, the model's model.yaml, default)


def largest_face(faces: Sequence[Face]) -> Optional[Face]:
    return max(faces, key=lambda face: face.area) if faces else None
