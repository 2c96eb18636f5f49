"""Uploads under limits: bytes per request (before the body is parsed) and pixels per image (before decoding).

:class:`BodySizeLimit` is a plain ASGI middleware: a request whose ``Content-Length`` is over the limit is
answered 413 without reading a byte into memory, and a chunked body is counted as it arrives.  The pixel
limit reads the width and height the file declares in its header (the toolkit's one image intake: nothing is
decoded), so a 50 000 × 50 000 "decompression bomb" of a few kilobytes is refused before OpenCV allocates 7 GB.
"""
from __future__ import annotations

import json

import numpy as np

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import declared_size, decode_image
from arcface_paddle.service.errors import PayloadTooLargeError

DRAIN_LIMIT = 256 * 1024 * 1024     # bytes read and discarded to answer an oversized upload cleanly


def decode_upload(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    """Upload bytes → H×W×3 uint8 RGB, refusing images that declare more than ``max_pixels`` (read from the
    header by :func:`arcface_paddle.core.images.declared_size`, before anything is decoded)."""
    if not data:
        raise ToolkitError(f"{name}: empty upload")
    try:
        size = declared_size(data, name)
    except ToolkitError as error:         # over the toolkit's own limit, so over any service limit too
        raise PayloadTooLargeError(str(error)) from None
    if size is not None and size[0] * size[1] > max_pixels:
        raise PayloadTooLargeError(f"{name}: image of {size[0]}×{size[1]} pixels is larger than the "
                                   f"{max_pixels / 1e6:g} Mpx limit")
    image = decode_image(data, name)
    if image.shape[0] * image.shape[1] > max_pixels:     # a format whose header could not be read
        raise PayloadTooLargeError(f"{name}: image of {image.shape[1]}×{image.shape[0]} pixels is larger than "
                                   f"the {max_pixels / 1e6:g} Mpx limit")
    return image


class _BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: 413 for request bodies over ``limit_for(path)`` bytes."""

    def __init__(self, app, limit_for):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._drain(receive, int(declared))
            await self._refuse(send, limit)
            return
        received, too_large, replaced = 0, False, False

        async def counting_receive():
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _BodyTooLarge()
            return message

        async def answering_send(message):
            # The framework turns the exception above into its own error response: answer 413 instead.
            nonlocal replaced
            if not too_large:
                await send(message)
            elif message["type"] == "http.response.start" and not replaced:
                replaced = True
                await self._drain(receive, DRAIN_LIMIT)
                await self._refuse(send, limit)

        try:
            await self.app(scope, counting_receive, answering_send)
        except _BodyTooLarge:
            if not replaced:
                await self._drain(receive, DRAIN_LIMIT)
                await self._refuse(send, limit)

    @staticmethod
    async def _drain(receive, declared: int) -> None:
        """Read (and drop) the rest of the body, so the client gets the answer instead of a reset connection."""
        if declared > DRAIN_LIMIT:
            return
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return

    @staticmethod
    async def _refuse(send, limit: int) -> None:
        body = json.dumps({"error": "too_large",
                           "detail": f"request body is larger than the {limit / 1048576:g} MB limit"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
