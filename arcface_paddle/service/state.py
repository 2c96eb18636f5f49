"""What request handlers get by dependency injection: the service state built by the app's lifespan.

Nothing lives in module globals: :func:`get_state` reads ``request.app.state.service``, so two apps (two
galleries, two tests) in one process never share anything.
"""
from __future__ import annotations

import asyncio
import dataclasses
import hmac
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

from fastapi import Depends, Header, Request
from starlette.exceptions import HTTPException

from arcface_paddle.service.engine import InferenceEngine
from arcface_paddle.service.errors import UnauthorizedError
from arcface_paddle.service.metrics import ServiceMetrics
from arcface_paddle.service.settings import ServiceSettings
from arcface_paddle.stores import GalleryStore

API_KEY_HEADER = "X-API-Key"


@dataclasses.dataclass
class ServiceState:
    settings: ServiceSettings
    engine: InferenceEngine
    store: GalleryStore
    metrics: ServiceMetrics
    gallery_executor: ThreadPoolExecutor         # gallery calls (SQLite fsyncs) wait here, not on inference
    private_texts: list                          # (server-side text, public stand-in) pairs for messages

    async def gallery(self, function: Callable, *args):
        """A (blocking) gallery store call, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.gallery_executor, function, *args)


def get_state(request: Request) -> ServiceState:
    state: Optional[ServiceState] = getattr(request.app.state, "service", None)
    if state is None:
        raise HTTPException(503, "the service is starting or stopping")
    return state


def require_api_key(state: ServiceState = Depends(get_state),
                    x_api_key: Optional[str] = Header(default=None, description="the service's API key")) -> None:
    """Changes need ``X-API-Key`` when the service was started with a key."""
    expected = state.settings.api_key
    if expected is None:
        return
    if x_api_key is None:
        raise UnauthorizedError(f"this change needs the {API_KEY_HEADER} header")
    if not hmac.compare_digest(x_api_key.encode("utf-8", "replace"), expected.encode("utf-8")):
        raise UnauthorizedError(f"wrong {API_KEY_HEADER}")
