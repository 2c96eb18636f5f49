"""Data formats and datasets: shards, label files, verification ``.bin``, RecordIO import, synthetic faces.

Names are imported lazily so that the conversion tools (which never need paddle) start fast.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "ImageFolderDataset": "datasets", "ShardDataset": "datasets", "SyntheticDataset": "datasets",
    "write_synthetic_tree": "synthetic", "write_synthetic_shards": "synthetic",
    "write_synthetic_verification_bin": "synthetic",
    "load_verification_bin": "verification_bin", "save_verification_bin": "verification_bin",
    "read_shard": "shard_format", "write_shard": "shard_format",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
