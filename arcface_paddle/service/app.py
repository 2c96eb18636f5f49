"""The FastAPI application: ``create_app(settings)``.

    app = create_app(ServiceSettings(gallery="data/gallery.db"))
    uvicorn.run(app, host="127.0.0.1", port=8000)          # what `arcface-paddle serve` does

:func:`open_service` loads the models and opens the gallery (checked against the recognizer); the app's
lifespan starts the inference workers and closes everything at shutdown.  Handlers reach the state through
dependency injection (:mod:`.state`).  Middleware, outermost first: metrics, then the body-size limit.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from arcface_paddle import __version__
from arcface_paddle.core.shipped_models import SHIPPED_MODELS_DIR
from arcface_paddle.service.engine import InferenceEngine
from arcface_paddle.service.errors import install_error_handlers
from arcface_paddle.service.metrics import MetricsMiddleware, ServiceMetrics
from arcface_paddle.service.routers import gallery, health, recognition, subjects
from arcface_paddle.service.settings import ServiceSettings
from arcface_paddle.service.state import ServiceState
from arcface_paddle.service.uploads import BodySizeLimit
from arcface_paddle.stores import open_store, read_gallery

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
GALLERY_THREADS = 4


def private_texts(settings: ServiceSettings, engine: InferenceEngine) -> list:
    """Server-side texts that must not reach a client, with what a client sees instead."""
    pairs = [(os.path.abspath(settings.gallery), "gallery"), (settings.gallery, "gallery"),
             (SHIPPED_MODELS_DIR, "<models>"), (tempfile.gettempdir(), "<tmp>")]
    for folder, public in ((engine.analyzer.rec_model_dir, "<recognizer>"),
                           (getattr(engine.analyzer.detector, "model_dir", None), "<detector>")):
        if folder:
            pairs += [(os.path.abspath(folder), public), (folder, public)]
    return pairs


def open_service(settings: ServiceSettings, metrics: Optional[ServiceMetrics] = None) -> ServiceState:
    """Load the models and open (or create) the gallery; ToolkitError for anything the user must fix."""
    metrics = metrics or ServiceMetrics()
    engine = InferenceEngine(settings, on_batch=metrics.batch_faces.observe)
    try:
        info = engine.analyzer.gallery_info
        store = open_store(settings.gallery, info, create=True)
        try:
            store.check_compatible(info.model_id, info.embedding_size, crop_mode=info.crop_mode)
            if settings.import_index:
                store.import_index(read_gallery(settings.import_index, reference_model_id=info.model_id))
        except BaseException:
            store.close()
            raise
    except BaseException:
        engine.executor.shutdown(wait=False)
        raise
    metrics.watch_gallery(lambda: len(store))
    return ServiceState(settings=settings, engine=engine, store=store, metrics=metrics,
                        gallery_executor=ThreadPoolExecutor(GALLERY_THREADS, thread_name_prefix="gallery"),
                        private_texts=private_texts(settings, engine))


def create_app(settings: ServiceSettings, state: Optional[ServiceState] = None) -> FastAPI:
    """The app; ``state`` from :func:`open_service` (else the lifespan opens it)."""
    metrics = state.metrics if state is not None else ServiceMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        service = state if state is not None else open_service(settings, metrics)
        await service.engine.start()
        app.state.service = service
        try:
            yield
        finally:
            app.state.service = None
            await service.engine.stop()
            service.gallery_executor.shutdown(wait=True)
            service.store.close()

    app = FastAPI(title="arcface-paddle face recognition", version=__version__, lifespan=lifespan,
                  description="Recognise faces in photos against a managed gallery. Changes need the X-API-Key "
                              "header when the service was started with an API key.")
    app.state.service = None
    app.state.metrics = metrics
    install_error_handlers(app)
    for router in (recognition.router, subjects.router, gallery.router, health.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(os.path.join(STATIC_DIR, "index.html"))

    def body_limit(path: str) -> int:
        return settings.max_import_bytes if path.startswith("/api/v1/gallery/import") else settings.max_upload_bytes

    app.add_middleware(BodySizeLimit, limit_for=body_limit)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
