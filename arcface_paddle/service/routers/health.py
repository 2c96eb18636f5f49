"""Liveness, readiness and Prometheus metrics (outside /api/v1: operators' endpoints, not the API's)."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

router = APIRouter(tags=["operations"])


@router.get("/health", summary="The process answers (liveness)")
async def health() -> dict:
    return {"status": "ok"}


@router.get("/ready", summary="Models loaded and the gallery answers (readiness)")
async def ready(request: Request) -> JSONResponse:
    state = getattr(request.app.state, "service", None)
    if state is None:
        return JSONResponse({"error": "unavailable", "detail": "models or gallery not loaded yet"}, status_code=503)
    try:
        faces = await state.gallery(len, state.store)
    except Exception:        # a gallery that does not answer (Milvus down) makes the service not ready
        return JSONResponse({"error": "unavailable", "detail": "the gallery does not answer"}, status_code=503)
    return JSONResponse({"status": "ready", "gallery_faces": faces, "model_id": state.engine.model_id})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics
    return Response(registry.render(), media_type=registry.content_type)
