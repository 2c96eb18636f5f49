"""The checks every gallery backend applies: names, face ids, embeddings going in and coming back out.

Every embedding that enters a gallery goes through :func:`checked_embeddings` (right width, finite, not all
zero, normalised); rows read back from a store go through :func:`check_stored_rows` (still finite and unit
length), so a damaged or hand-edited gallery is refused on open instead of giving silently wrong matches.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid

import numpy as np

from arcface_paddle.core.embeddings import l2_normalize
from arcface_paddle.stores.errors import IncompatibleGalleryError, InvalidValueError
from arcface_paddle.stores.index_format import CROP_MODES
from arcface_paddle.stores.vote import UNKNOWN

MAX_NAME_CHARS = 200
UNIT_TOLERANCE = 1e-6        # a row this close to unit length is stored as given
FACE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
NORM_TOLERANCE = 1e-3        # stored rows are unit length; more drift than this means a damaged gallery


def check_subject_name(name) -> str:
    """A subject name as stored: stripped, 1-200 characters, no control characters, not ``unknown``."""
    if not isinstance(name, str):
        raise InvalidValueError(f"subject name must be text, got {type(name).__name__}")
    name = name.strip()
    if not name:
        raise InvalidValueError("subject name is empty")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidValueError(f"subject name is {len(name)} characters long (at most {MAX_NAME_CHARS})")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in name):
        raise InvalidValueError(f"subject name {name!r} holds control characters")
    if name.lower() == UNKNOWN:
        raise InvalidValueError(f"{UNKNOWN!r} is what an unrecognised face is called; choose another subject name")
    return name


def check_face_id(face_id) -> str:
    if not isinstance(face_id, str) or not FACE_ID_PATTERN.match(face_id):
        raise InvalidValueError(f"face id {str(face_id)[:140]!r} must be 1-128 characters of letters, digits and "
                                "._:@- (starting with a letter or digit)")
    return face_id


def new_face_id() -> str:
    return uuid.uuid4().hex


def content_face_id(subject: str, embedding: np.ndarray) -> str:
    """A face id derived from the face itself, so importing the same gallery twice adds nothing twice."""
    digest = hashlib.sha1(subject.encode("utf-8") + b"\0" + np.ascontiguousarray(embedding, "<f4").tobytes())
    return "imp-" + digest.hexdigest()[:24]


def checked_embeddings(rows, embedding_size: int, where: str = "embedding") -> np.ndarray:
    """N×D float32 unit rows; InvalidValueError for the wrong width, NaN/Inf or an all-zero row."""
    try:
        rows = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError):
        raise InvalidValueError(f"{where}: not a numeric array") from None
    if rows.ndim == 1:
        rows = rows[None]
    if rows.ndim != 2 or rows.shape[1] != embedding_size:
        raise IncompatibleGalleryError(f"{where}: embeddings of shape {rows.shape}, but the gallery holds "
                                       f"{embedding_size}-d embeddings")
    if not np.isfinite(rows).all():
        raise InvalidValueError(f"{where}: embedding holds NaN or infinite values")
    norms = np.linalg.norm(rows, axis=1)
    if (norms <= 1e-6).any():
        raise InvalidValueError(f"{where}: an all-zero embedding cannot be compared")
    # Rows already unit length are kept bit for bit (normalising again could move the last bit): an exported
    # gallery imported again then has the same content face ids, so nothing is added twice.
    unit = np.abs(norms - 1.0) <= UNIT_TOLERANCE
    return np.where(unit[:, None], rows, l2_normalize(rows)).astype(np.float32)


def check_stored_rows(rows: np.ndarray, where: str) -> None:
    """Rows read back from a store must still be finite and unit length (else it was damaged or hand-edited)."""
    if not len(rows):
        return
    if not np.isfinite(rows.sum()):
        raise InvalidValueError(f"{where}: corrupt gallery (non-finite embedding values)")
    norms = np.einsum("ij,ij->i", rows, rows)
    bad = np.flatnonzero(np.abs(norms - 1.0) > 2 * NORM_TOLERANCE)
    if len(bad):
        raise InvalidValueError(f"{where}: corrupt gallery ({len(bad)} embeddings are not unit length, "
                                f"e.g. row {int(bad[0])} has squared norm {float(norms[bad[0]]):.4f})")


def check_crop_mode(crop_mode: str, where: str) -> str:
    if crop_mode not in CROP_MODES:
        raise InvalidValueError(f"{where}: unknown crop_mode {crop_mode!r} (expected one of {', '.join(CROP_MODES)})")
    return crop_mode
