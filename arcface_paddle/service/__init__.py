"""The face recognition service: FastAPI app over a gallery store, started by ``arcface-paddle serve``.

Needs the optional extra ``pip install "arcface-paddle[service]"``; nothing outside this package and the
serve CLI imports it.  Layout: ``app`` (factory + lifespan), ``state`` (dependency injection), ``engine`` and
``batching`` (inference off the event loop, recogniser batched across requests), ``uploads`` (size and pixel
limits), ``errors`` (one JSON error shape), ``metrics`` (Prometheus), ``routers/`` (one per resource),
``static/`` (the web page).
"""
