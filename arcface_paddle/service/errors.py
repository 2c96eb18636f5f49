"""One error shape for every failure: ``{"error": "<kind>", "detail": "<one line>"}`` with the right status.

Library errors keep their meaning (gallery not found → 404, conflict → 409, bad image or incompatible gallery
→ 422, too large → 413, unsupported by the backend → 501); anything unexpected is a 500 whose detail says
nothing about the server (the traceback goes to the server log only).  Server-side paths (gallery file,
model folders, temporary files) are replaced by a neutral word before a message leaves the process.
"""
from __future__ import annotations

import logging
from typing import Iterable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.stores import (
    ConflictError,
    IncompatibleGalleryError,
    InvalidValueError,
    NotFoundError,
    UnsupportedOperationError,
)

log = logging.getLogger("arcface_paddle.service")


class PayloadTooLargeError(ToolkitError):
    """An upload over the byte limit, or an image declaring more pixels than allowed."""


class UnauthorizedError(ToolkitError):
    """A change without the configured API key."""


# most specific first: InvalidValueError etc. are ToolkitErrors too
_STATUS = ((NotFoundError, 404, "not_found"), (ConflictError, 409, "conflict"),
           (IncompatibleGalleryError, 422, "incompatible_gallery"), (InvalidValueError, 422, "invalid_value"),
           (UnsupportedOperationError, 501, "unsupported"), (PayloadTooLargeError, 413, "too_large"),
           (UnauthorizedError, 401, "unauthorized"), (ToolkitError, 422, "invalid_input"))
_HTTP_KINDS = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
               409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "invalid_request",
               429: "too_many_requests", 503: "unavailable"}


def one_line(text: str, limit: int = 500) -> str:
    return " ".join(str(text).split())[:limit]


def error_response(status: int, kind: str, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": kind, "detail": one_line(detail)}, status_code=status, headers=headers)


def scrub(message: str, private: Iterable[tuple[str, str]]) -> str:
    """``message`` with each private text (a server path) replaced by its public stand-in."""
    for secret, public in sorted(private, key=lambda pair: -len(pair[0])):
        if secret:
            message = message.replace(secret, public)
    return message


def toolkit_error_response(error: ToolkitError, private: Iterable[tuple[str, str]] = ()) -> JSONResponse:
    for kind, status, name in _STATUS:
        if isinstance(error, kind):
            headers = {"WWW-Authenticate": "X-API-Key"} if status == 401 else None
            return error_response(status, name, scrub(str(error), private), headers)
    raise AssertionError("unreachable: ToolkitError is the last entry")


def install_error_handlers(app: FastAPI) -> None:
    def private_texts(request: Request):
        state = getattr(request.app.state, "service", None)
        return state.private_texts if state is not None else ()

    @app.exception_handler(ToolkitError)
    async def toolkit_error(request: Request, error: ToolkitError):
        return toolkit_error_response(error, private_texts(request))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        return error_response(error.status_code, _HTTP_KINDS.get(error.status_code, "error"), str(error.detail),
                              getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        problems = []
        for item in error.errors()[:3]:
            where = ".".join(str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path"))
            problems.append(f"{where or 'request'}: {item.get('msg', 'invalid')}")
        return error_response(422, "invalid_request", "; ".join(problems) or "invalid request")

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception):
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal server error (details are in the server log)")
