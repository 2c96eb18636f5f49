"""Faces tracked across video frames, each track named by a vote over its recognitions.

Tracking is ByteTrack (``supervision.ByteTrack``: Kalman-predicted boxes matched to detections by IoU).
A track's name is the name most of its recognitions voted for (ties: higher mean similarity), so one poor
frame (a blink, a hand in front of the face) no longer flips the name; the similarity shown is the mean over
the winning name's votes.  Recognition runs only when it can change something: on a track's first frame,
every ``rec_every`` frames after, and on every frame while the last match lies within ``weak_margin`` of the
threshold.  A face ByteTrack has not confirmed yet (its first frame) is recognised on its own, and that
recognition is the first vote of the track it starts (which then counts as recognised on that frame).

    tracker = FaceTracker(rec_thresh=0.40)
    tracker.assign(faces, frame_number)                        # sets face.track_id (None: unconfirmed)
    todo = [face for face in faces if tracker.needs_recognition(face, frame_number)]
    ... embed + match ``todo`` (FaceAnalyzer.embed_faces / match_faces) ...
    tracker.label(faces, frame_number, recognised=todo)       # name + similarity from each track's vote
"""
from __future__ import annotations

import collections
import dataclasses
import warnings
from typing import Optional, Sequence

import numpy as np

from arcface_paddle.core.boxes import box_iou
from arcface_paddle.core.errors import ToolkitError

# Defaults measured on the tracking test video and benchmarks/bench_throughput.py (docs/throughput.md).
DEFAULT_REC_EVERY = 10          # frames between re-recognitions of a confident track
DEFAULT_WEAK_MARGIN = 0.05      # |similarity − threshold| below this: recognise the track on every frame
DEFAULT_TRACK_BUFFER = 30       # frames a lost track is kept to be found again (ByteTrack's lost_track_buffer)
SEED_IOU = 0.3                  # an unconfirmed face seeds the track whose first box overlaps it this much


def check_tracking_options(rec_every: int, weak_margin: float, track_buffer: int) -> None:
    if int(rec_every) < 1:
        raise ToolkitError(f"rec_every (frames between re-recognitions) must be >= 1, got {rec_every}")
    if not 0.0 <= float(weak_margin) <= 1.0:
        raise ToolkitError(f"weak_margin must be in [0, 1], got {weak_margin}")
    if int(track_buffer) < 0:
        raise ToolkitError(f"track_buffer (frames a lost track is kept) must be >= 0, got {track_buffer}")


@dataclasses.dataclass
class TrackIdentity:
    """Everything a track has been recognised as."""
    track_id: int
    first_frame: int
    last_frame: int
    votes: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    similarity_sums: dict = dataclasses.field(default_factory=dict)
    last_similarity: Optional[float] = None
    last_recognised: Optional[int] = None      # frame of the last recognition scheduled
    seed: object = None                        # an unconfirmed Face of the frame before the track started

    def add(self, name: str, similarity: float) -> None:
        self.votes[name] += 1
        similarity = float(similarity) if similarity is not None and np.isfinite(similarity) else 0.0
        self.similarity_sums[name] = self.similarity_sums.get(name, 0.0) + similarity
        self.last_similarity = similarity

    @property
    def recognitions(self) -> int:
        return sum(self.votes.values())

    @property
    def name(self) -> Optional[str]:
        if not self.votes:
            return None
        return max(self.votes, key=lambda name: (self.votes[name], self.similarity_sums[name] / self.votes[name]))

    @property
    def similarity(self) -> Optional[float]:
        name = self.name
        return None if name is None else self.similarity_sums[name] / self.votes[name]

    def to_dict(self) -> dict:
        return {"name": self.name, "similarity": None if self.similarity is None else round(self.similarity, 4),
                "first_frame": self.first_frame, "last_frame": self.last_frame,
                "recognitions": self.recognitions, "votes": dict(self.votes)}


@dataclasses.dataclass
class _Track:
    """One ByteTrack track: the identity segment it currently carries and when it was last seen."""
    identity: TrackIdentity
    last_seen: int
    verify: bool = False       # found again after a gap: the next recognition checks it is the same person


class FaceTracker:
    """ByteTrack over face boxes plus a per-track identity vote (see the module doc).

    ByteTrack keeps a lost track for ``track_buffer`` frames and may hand it to whichever face its predicted
    box lands on, another person included.  So a track found again after a gap is recognised at once, and
    when that recognition names someone else the track starts over under a new ``track_id``: a track id
    never changes person.
    """

    def __init__(self, rec_thresh: float, rec_every: int = DEFAULT_REC_EVERY,
                 weak_margin: float = DEFAULT_WEAK_MARGIN, track_buffer: int = DEFAULT_TRACK_BUFFER):
        check_tracking_options(rec_every, weak_margin, track_buffer)
        self.rec_thresh, self.rec_every, self.weak_margin = float(rec_thresh), int(rec_every), float(weak_margin)
        self.identities: dict[int, TrackIdentity] = {}       # every track id shown, in order of creation
        self._tracks: dict[int, _Track] = {}                 # by ByteTrack id
        self._track_of: dict[int, _Track] = {}               # id(face) → its track, from assign to label
        self._unconfirmed: list = []           # the last frame's faces without a track (seeds for new tracks)
        self._byte_track = self._new_byte_track(int(track_buffer))

    @staticmethod
    def _new_byte_track(track_buffer: int):
        import supervision  # optional-heavy (supervision, scipy): imported when a video is tracked
        with warnings.catch_warnings():
            # 0.30 warns that ByteTrack moves to the `trackers` package, which needs the GUI opencv-python
            # build (clashing with the headless OpenCV we pin); the class works as documented.
            warnings.simplefilter("ignore", FutureWarning)
            # frame_rate=30 makes lost_track_buffer count frames of this video; every detection we pass is
            # confident (the detector already applied its threshold), so all of them may start tracks.
            return supervision.ByteTrack(track_activation_threshold=0.0, lost_track_buffer=track_buffer,
                                         minimum_matching_threshold=0.8, frame_rate=30,
                                         minimum_consecutive_frames=1)

    def _new_identity(self, frame_number: int) -> TrackIdentity:
        identity = TrackIdentity(len(self.identities) + 1, frame_number, frame_number)
        self.identities[identity.track_id] = identity
        return identity

    def assign(self, faces: Sequence, frame_number: int) -> None:
        """Give each face of this frame its ``track_id`` (None for a face no confirmed track holds yet).
        Call for consecutive frames; ``label`` may still renumber a track found again on another person."""
        import supervision  # optional-heavy (supervision): imported when a video is tracked
        for face in faces:
            face.track_id = None
        boxes = np.asarray([face.box for face in faces], np.float32).reshape(-1, 4)
        detections = supervision.Detections(xyxy=boxes, confidence=np.asarray([face.score for face in faces],
                                                                                np.float32),
                                            data={"index": np.arange(len(faces))})
        tracked = self._byte_track.update_with_detections(detections)
        for index, byte_id in zip(tracked.data.get("index", []), tracked.tracker_id):
            face = faces[int(index)]
            track = self._tracks.get(int(byte_id))
            if track is None:
                track = self._tracks[int(byte_id)] = _Track(self._new_identity(frame_number), frame_number)
                track.identity.seed = self._seed_for(face)
                if track.identity.seed is not None:      # recognised one frame ago: not due again yet
                    track.identity.last_recognised = frame_number - 1
            elif track.last_seen < frame_number - 1:
                track.verify = True
            track.last_seen = frame_number
            track.identity.last_frame = frame_number
            face.track_id = track.identity.track_id
            self._track_of[id(face)] = track
        self._unconfirmed = [face for face in faces if face.track_id is None]

    def _seed_for(self, face):
        if not self._unconfirmed:
            return None
        overlaps = box_iou(np.asarray(face.box, np.float32),
                           np.asarray([other.box for other in self._unconfirmed], np.float32))[0]
        best = int(np.argmax(overlaps))
        return self._unconfirmed[best] if overlaps[best] >= SEED_IOU else None

    def needs_recognition(self, face, frame_number: int) -> bool:
        """Whether to embed this face now (and note that it will be)."""
        track = self._track_of.get(id(face))
        if track is None:
            return True
        identity = track.identity
        due = (track.verify or identity.last_recognised is None
               or frame_number - identity.last_recognised >= self.rec_every
               or (identity.last_similarity is not None
                   and abs(identity.last_similarity - self.rec_thresh) < self.weak_margin))
        if due:
            identity.last_recognised = frame_number
        return due

    def label(self, faces: Sequence, frame_number: int, recognised: Sequence = ()) -> None:
        """Count this frame's fresh recognitions (faces of ``recognised`` carry a per-frame name) into their
        tracks' votes, then name every tracked face by its track's vote."""
        fresh = {id(face) for face in recognised}
        for face in faces:
            track = self._track_of.pop(id(face), None)
            if track is None:
                continue                         # unconfirmed: keeps its own recognition
            identity = track.identity
            seed, identity.seed = identity.seed, None
            if seed is not None and seed.name is not None:
                identity.add(seed.name, seed.similarity)
            if id(face) in fresh and face.name is not None:
                if track.verify and identity.votes and face.name != identity.name:
                    identity.last_frame = max(identity.first_frame, frame_number - 1)
                    track.identity = identity = self._new_identity(frame_number)    # another person
                    identity.last_recognised = frame_number
                track.verify = False
                identity.add(face.name, face.similarity)
            face.track_id = identity.track_id
            if identity.votes:
                face.name, face.similarity = identity.name, identity.similarity

    def summary(self) -> dict:
        """track id → name, similarity, first/last frame, recognitions, votes (for the JSON)."""
        return {str(track_id): identity.to_dict() for track_id, identity in sorted(self.identities.items())}
