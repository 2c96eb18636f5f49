"""What can go wrong with a gallery operation, as :class:`ToolkitError` kinds a caller can tell apart.

The CLIs print every one of them as one line; the service maps each kind to its HTTP status
(not found 404, conflict 409, incompatible gallery 422, unsupported by this backend 501).
"""
from __future__ import annotations

from arcface_paddle.core.errors import ToolkitError


class GalleryError(ToolkitError):
    """Base of the gallery store errors."""


class NotFoundError(GalleryError):
    """No such subject, face or gallery."""


class ConflictError(GalleryError):
    """The change contradicts what the gallery holds (face id under another subject, rename onto a name in use)."""


class IncompatibleGalleryError(GalleryError):
    """Embeddings from another recognizer, of another size or of another crop mode than the gallery's."""


class InvalidValueError(GalleryError):
    """A subject name, face id or embedding that no gallery may hold."""


class UnsupportedOperationError(GalleryError):
    """The backend cannot do this (``index.bin`` has no face ids)."""
