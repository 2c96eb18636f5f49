"""Run the face recognition service: HTTP API, web page at /, gallery in a database.

    arcface-paddle serve                                        # http://127.0.0.1:8000, gallery data/gallery.db
    arcface-paddle serve --import_index demo/index.bin          # start with the demo's three people
    ARCFACE_API_KEY=$(openssl rand -hex 24) arcface-paddle serve --host 0.0.0.0

Set an API key before binding beyond localhost: without one, anyone who reaches the port can change the
gallery.  Needs the optional extra: pip install "arcface-paddle[service]".
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import sys

from arcface_paddle.cli.arguments import ArgumentParser
from arcface_paddle.cli.device_options import add_device_arguments, device_options
from arcface_paddle.cli.model_options import add_model_arguments, model_options
from arcface_paddle.core.errors import ToolkitError, run_cli
from arcface_paddle.core.safe_io import read_file_bytes

API_KEY_ENV = "ARCFACE_API_KEY"


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(prog="arcface-paddle serve", description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", default=os.path.join("data", "gallery.db"),
                        help="gallery: gallery.db (SQLite, default data/gallery.db), index.bin, "
                             "milvus://host:port/collection or milvus-lite:PATH; created when missing")
    parser.add_argument("--import_index", metavar="SRC", help="add the faces of this gallery at start (index.bin "
                        "or any gallery; rows already imported are skipped)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api_key_file", help=f"file holding the API key that changes need (or set ${API_KEY_ENV})")
    add_model_arguments(parser)
    parser.add_argument("--workers", type=int, help="inference threads (default: one per CPU core)")
    parser.add_argument("--batch_window_ms", type=float, default=2.0,
                        help="how long the recogniser waits to batch faces of concurrent requests (default 2)")
    parser.add_argument("--max_batch", type=int, default=16, help="faces per recogniser run (default 16)")
    parser.add_argument("--max_upload_mb", type=float, default=20.0, help="largest request with photos (default 20)")
    parser.add_argument("--max_megapixels", type=float, default=40.0,
                        help="largest photo by declared size, checked before decoding (default 40)")
    add_device_arguments(parser)
    parser.add_argument("--log_level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    return parser.parse_args(argv)


def read_api_key(args) -> str | None:
    if args.api_key_file:
        return read_file_bytes(args.api_key_file, "API key file").decode("utf-8", "replace").strip() or None
    return os.environ.get(API_KEY_ENV) or None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def settings_from(args):
    from arcface_paddle.service.settings import MEGABYTE, ServiceSettings  # optional extra [service]

    options = dict(gallery=args.gallery, analyzer=model_options(args), batch_window_ms=args.batch_window_ms, max_batch=args.max_batch,
                   max_upload_bytes=int(args.max_upload_mb * MEGABYTE), max_pixels=int(args.max_megapixels * 1e6),
                   api_key=read_api_key(args), import_index=args.import_index, device=device_options(args))
    if args.workers:
        options["workers"] = args.workers
    return ServiceSettings(**options)


def main(argv=None) -> int:
    args = parse_args(argv)
    # One math thread per inference worker (the workers run requests in parallel, one per core); set before
    # paddle loads, which otherwise warns about any other value.
    os.environ["OMP_NUM_THREADS"] = "1"
    if not 0 < args.port < 65536:
        raise ToolkitError(f"--port must be 1-65535, got {args.port}")
    try:
        import uvicorn  # optional extra [service]

        from arcface_paddle.service.app import create_app, open_service  # optional extra [service]
    except ImportError as error:
        raise ToolkitError(f"the service needs the optional extra: pip install 'arcface-paddle[service]' "
                           f"({error.name} is missing)") from None
    settings = settings_from(args)
    if settings.api_key is None and not is_loopback(args.host):
        print(f"warning: binding {args.host} without an API key: anyone who reaches this port can change the "
              f"gallery (set ${API_KEY_ENV} or --api_key_file)", file=sys.stderr)
    state = open_service(settings)
    analyzer = state.engine.analyzer
    print(f"recognition threshold {analyzer.rec_thresh:.4f}: {analyzer.rec_thresh_source}", file=sys.stderr)
    print(f"gallery {args.gallery}: {len(state.store)} faces ({state.store.backend}); serving "
          f"http://{args.host}:{args.port}/ (API docs at /docs)", file=sys.stderr, flush=True)
    uvicorn.run(create_app(settings, state), host=args.host, port=args.port, log_level=args.log_level,
                access_log=args.log_level == "debug")
    return 0


if __name__ == "__main__":
    run_cli(main)
