"""Prometheus metrics of one service instance (its own registry: two apps in a process never mix counts).

``arcface_requests_total{method,route,status}`` and ``arcface_request_seconds{method,route}`` are recorded by
:class:`MetricsMiddleware` (route = the path template, so ``/api/v1/subjects/{name}`` is one series however
many subjects there are); ``arcface_recognizer_batch_faces`` shows how well micro-batching fills batches;
``arcface_gallery_faces`` and ``arcface_requests_in_progress`` are read when scraped.
"""
from __future__ import annotations

import time
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)


class ServiceMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("arcface_requests", "HTTP requests answered", ("method", "route", "status"),
                                registry=self.registry)
        self.latency = Histogram("arcface_request_seconds", "Time to answer an HTTP request", ("method", "route"),
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_progress = Gauge("arcface_requests_in_progress", "HTTP requests being answered",
                                 registry=self.registry)
        self.batch_faces = Histogram("arcface_recognizer_batch_faces", "Face crops per recogniser run",
                                     buckets=BATCH_BUCKETS, registry=self.registry)
        self.gallery_faces = Gauge("arcface_gallery_faces", "Faces in the gallery", registry=self.registry)

    def watch_gallery(self, count: Callable[[], int]) -> None:
        self.gallery_faces.set_function(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware counting and timing every HTTP request by route template and status."""

    def __init__(self, app, metrics: ServiceMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def recording_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.metrics.in_progress.dec()
            template = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.latency.labels(scope["method"], template).observe(time.perf_counter() - start)
