"""What every exporter of a Paddle Inference model folder shares: ONNX conversion and moving a finished export
into place (files are built in a staging folder beside the target, so a failed export leaves the old model intact).
"""
from __future__ import annotations

import contextlib
import os
from typing import Callable

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.model_yaml import MODEL_CONFIG_NAME, PARAMS_NAME, PROGRAM_NAMES, file_sha256
from arcface_paddle.core.safe_io import check_writable_folder

ONNX_NAME = "inference.onnx"
MIN_ONNX_OPSET = 11
# Files an export owns: stale ones from an earlier export into the same folder are removed.
EXPORT_FILES = (*PROGRAM_NAMES.values(), PARAMS_NAME, ONNX_NAME, MODEL_CONFIG_NAME)


def export_onnx(program_path: str, params_path: str, output_path: str, opset: int = MIN_ONNX_OPSET) -> str:
    """Convert a saved program to ONNX with paddle2onnx (optional extra ``arcface-paddle[onnx]``)."""
    if opset < MIN_ONNX_OPSET:
        raise ToolkitError(f"ONNX opset must be >= {MIN_ONNX_OPSET}, got {opset}")
    try:
        import paddle2onnx  # optional dependency (pip install "arcface-paddle[onnx]")
    except ImportError:
        raise ToolkitError("--onnx needs paddle2onnx: pip install 'arcface-paddle[onnx]'") from None
    try:
        model_bytes = paddle2onnx.export(program_path, params_path, save_file=None, opset_version=opset,
                                         auto_upgrade_opset=True, enable_onnx_checker=True)
    except Exception as error:   # paddle2onnx logs and swallows its own errors, leaving nothing returned
        raise ToolkitError(f"{program_path}: ONNX conversion failed ({type(error).__name__}: {error})") from None
    if not model_bytes:
        raise ToolkitError(f"{program_path}: ONNX conversion produced nothing (see paddle2onnx messages above)")
    with open(output_path, "wb") as handle:
        handle.write(model_bytes)
    return output_path


def rewrite_legacy_program(program_path: str, *block_rewrites: Callable) -> None:
    """Drop the ``op_callstack`` attributes (Python stack traces with absolute paths) from a legacy program file,
    so an export is the same file wherever the toolkit is installed, and apply each ``block_rewrite(block)``."""
    from paddle.base.proto import framework_pb2  # heavy (paddle): imported on first use

    program = framework_pb2.ProgramDesc()
    with open(program_path, "rb") as handle:
        program.ParseFromString(handle.read())
    for block in program.blocks:
        for op in block.ops:
            kept = [attr for attr in op.attrs if attr.name != "op_callstack"]
            del op.attrs[:]
            op.attrs.extend(kept)
        for rewrite in block_rewrites:
            rewrite(block)
    with open(program_path, "wb") as handle:
        handle.write(program.SerializeToString(deterministic=True))


def check_export_folder(output_dir: str) -> None:
    """Before an export starts: ``output_dir`` is not a file, and its parent (where the export is staged) is
    writable."""
    output_dir = os.path.abspath(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ToolkitError(f"{output_dir}: exists and is not a folder")
    check_writable_folder(os.path.dirname(output_dir), create=False)


def move_export_into_place(staging: str, output_dir: str) -> None:
    """Move a finished export from ``staging`` into ``output_dir``, ``model.yaml`` last (it marks the folder
    complete); files an earlier export left there that this one did not produce are removed first."""
    os.makedirs(output_dir, exist_ok=True)
    produced = set(os.listdir(staging))
    for name in EXPORT_FILES:                       # an earlier export's leftovers would contradict model.yaml
        if name not in produced:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(output_dir, name))
    with contextlib.suppress(FileNotFoundError):    # model.yaml goes last: it marks the folder complete
        os.unlink(os.path.join(output_dir, MODEL_CONFIG_NAME))
    for name in sorted(produced - {MODEL_CONFIG_NAME}) + [MODEL_CONFIG_NAME]:
        os.replace(os.path.join(staging, name), os.path.join(output_dir, name))


def file_digests(model_dir: str) -> dict:
    """sha256 of every file in an export folder (reproducibility checks)."""
    return {name: file_sha256(os.path.join(model_dir, name))
            for name in sorted(os.listdir(model_dir)) if not name.startswith(".")}
