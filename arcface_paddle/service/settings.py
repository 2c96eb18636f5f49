"""Everything the service is started with, in one place (the ``arcface-paddle serve`` options)."""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

from arcface_paddle.core.errors import ToolkitError

DEFAULT_GALLERY = os.path.join("data", "gallery.db")
MEGABYTE = 1024 * 1024


def default_workers() -> int:
    """One inference thread per CPU this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:          # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclasses.dataclass
class ServiceSettings:
    gallery: str = DEFAULT_GALLERY               # any gallery path/URI (arcface_paddle.stores)
    # FaceAnalyzer options (det_model, rec_model, det_thresh, rec_thresh, cdd_num, align, closeup, tiling,
    # refine_keypoints: arcface_paddle.cli.model_options); missing ones take FaceAnalyzer's defaults
    analyzer: dict = dataclasses.field(default_factory=dict)
    workers: int = dataclasses.field(default_factory=default_workers)   # inference threads, 1 core each
    batch_window_ms: float = 2.0                 # how long the recogniser waits to fill a batch
    max_batch: int = 16                          # faces per recogniser run (oneDNN caches up to 16 shapes)
    max_upload_bytes: int = 20 * MEGABYTE        # one request with images
    max_import_bytes: int = 1024 * MEGABYTE      # one request importing an index.bin
    max_pixels: int = 40_000_000                 # declared width × height, checked before decoding
    max_images_per_request: int = 32
    device: dict = dataclasses.field(default_factory=dict)   # use_gpu / use_tensorrt / precision / gpu_id / det_engine
    api_key: Optional[str] = None                # when set, changes need the X-API-Key header
    import_index: Optional[str] = None           # copy this gallery's faces in at start (idempotent)

    def __post_init__(self):
        if self.api_key is not None and len(self.api_key) < 16:
            raise ToolkitError("the API key must be at least 16 characters (use e.g. `openssl rand -hex 24`)")
