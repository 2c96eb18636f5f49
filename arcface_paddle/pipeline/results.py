"""What a run over an image, a folder or a video returns (the drawn files and JSON hold the details)."""
from __future__ import annotations

import collections
import dataclasses


@dataclasses.dataclass
class RunResult:
    input: str
    output: str                  # drawn image or video
    json: str                    # boxes, keypoints, scores, names, similarities (video: per frame, track ids)
    faces: list                  # list[Face] of an image (a video keeps none: see names / face_count)
    frames: int | None = None    # video: frames processed
    corrupt_frames: list = dataclasses.field(default_factory=list)    # video: frames that could not be decoded
    interrupted: bool = False    # video stopped by Ctrl-C (output finalised up to there)
    recognitions: int | None = None     # video: faces embedded (fewer than face-frames when tracking)
    seconds: float | None = None        # video: processing time
    names: collections.Counter = dataclasses.field(default_factory=collections.Counter)   # video: face-frames per name
    face_count: int = 0          # video: face-frames


@dataclasses.dataclass
class RunReport:
    results: list                # RunResult per processed file
    failed: list                 # (path, reason) for files that could not be processed
