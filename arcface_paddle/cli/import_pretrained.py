"""Import open pretrained weights (.onnx recognizer or .tflite BlazeFace) into our Paddle networks.

    python tools/import_pretrained.py --source face_recognition_sface_2021dec.onnx --network MobileNetV1 \
        --output inference_model/mobilenet_sface --checkpoint output/sface_pretrained
    python tools/import_pretrained.py --source face_detection_short_range.tflite \
        --network BlazeFace_short_range --output inference_model/blazeface_short_range

Writes the inference model folder (program + inference.pdiparams + model.yaml with preprocessing and the
weights' source, sha256 and licence) and, with --checkpoint, a training checkpoint for train.py --pretrained.
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Optional

from arcface_paddle.cli.arguments import ArgumentParser
from arcface_paddle.core.checkpoint import BACKBONE_FILE, META_FILE
from arcface_paddle.core.errors import ToolkitError, run_cli
from arcface_paddle.core.model_yaml import ModelConfig
from arcface_paddle.core.program_export import check_export_folder
from arcface_paddle.core.safe_io import atomic_write
from arcface_paddle.inference.export import export_model

SOURCE_KINDS = {".onnx": "recognizer", ".tflite": "detector"}


def _blazeface_variant(network: str, source: str) -> str:
    name = network.lower()
    for prefix in ("blazeface_", "blazeface-", "blazeface"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    if name not in ("short_range", "full_range"):
        raise ToolkitError(f"{source}: a .tflite file imports into BlazeFace_short_range or BlazeFace_full_range, "
                           f"not {network!r}")
    return name


def _import_recognizer(source: str, network: str, output: str, checkpoint: Optional[str], fmt: str,
                       color_order: Optional[str], fuse_head: bool) -> ModelConfig:
    from arcface_paddle.importers.sface import import_onnx_recognizer, save_imported_checkpoint  # paddle: lazily

    imported = import_onnx_recognizer(source, network=network, color_order=color_order)
    if checkpoint:
        save_imported_checkpoint(imported, checkpoint)
    config = ModelConfig(task="recognition", network=imported.network, input_size=list(imported.input_size),
                         color_order=imported.color_order, mean=[imported.mean] * 3, std=[imported.std] * 3,
                         embedding_size=imported.embedding_size, source=imported.source)
    layer = imported.layer
    if fuse_head:
        if not hasattr(layer, "fused_for_inference"):
            raise ToolkitError(f"{source}: --fuse-head is not available for {network}")
        layer = layer.fused_for_inference()
    return export_model(layer, output, config, fmt=fmt)


def _import_detector(source: str, network: str, output: str, checkpoint: Optional[str], fmt: str) -> ModelConfig:
    from blazeface_paddle.conversion.tflite_import import import_tflite_model  # paddle: imported when needed

    variant = _blazeface_variant(network, source)
    checkpoint_params = os.path.join(checkpoint, BACKBONE_FILE) if checkpoint else None  # folder made on write
    config = import_tflite_model(source, variant, output, fmt=fmt, checkpoint_path=checkpoint_params)
    if checkpoint:  # a checkpoint folder (tools/train_detector.py --pretrained DIR) needs meta.json too
        with atomic_write(os.path.join(checkpoint, META_FILE), "w") as handle:
            json.dump({"network": "BlazeFace", "variant": variant, "epoch": 0, "step": 0, "world_size": 1,
                       "imported_from": config.source}, handle, indent=2, sort_keys=True)
    return config


def import_pretrained(source: str, network: str, output: str, checkpoint: Optional[str] = None,
                      fmt: str = "legacy", color_order: Optional[str] = None, fuse_head: bool = False) -> ModelConfig:
    """Import ``source`` (.onnx or .tflite) into ``network``; export to ``output``; returns the model.yaml config.

    ``checkpoint`` (optional folder) also receives ``backbone.pdparams`` + ``meta.json`` for fine-tuning
    (``train.py --pretrained``).  ``color_order`` overrides a recognizer's recorded channel order.
    ``fuse_head`` exports a recognizer with its head BNs folded into the FC (MobileNetV1: same outputs, faster);
    the checkpoint always keeps the trainable, unfused form.
    """
    source = os.fspath(source)
    if not os.path.isfile(source):
        raise ToolkitError(f"{source}: weights file not found")
    extension = os.path.splitext(source)[1].lower()
    if extension not in SOURCE_KINDS:
        raise ToolkitError(f"{source}: unsupported weights format {extension or '(no extension)'}; "
                           f"expected {' or '.join(SOURCE_KINDS)}")
    if os.path.abspath(output) == os.path.abspath(checkpoint or "\0"):
        raise ToolkitError(f"{output}: --output and --checkpoint must be different folders")
    if extension == ".onnx":
        return _import_recognizer(source, network, output, checkpoint, fmt, color_order, fuse_head)
    if color_order or fuse_head:
        raise ToolkitError(f"{source}: --color-order and --fuse-head apply to .onnx recognizers only")
    return _import_detector(source, network, output, checkpoint, fmt)


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True,
                        help="weights file: FILE.onnx (recognizer) or FILE.tflite (BlazeFace)")
    parser.add_argument("--network", required=True,
                        help="network to import into: MobileNetV1 (.onnx), "
                             "BlazeFace_short_range / BlazeFace_full_range (.tflite)")
    parser.add_argument("--output", required=True, help="inference model folder to write")
    parser.add_argument("--checkpoint", default=None, help="also write a training checkpoint folder here")
    parser.add_argument("--format", default="legacy", choices=["legacy", "pir"], help="inference program format")
    parser.add_argument("--color-order", default=None, choices=["RGB", "BGR"],
                        help="override the recognizer's recorded channel order (unknown .onnx files default to RGB)")
    parser.add_argument("--fuse-head", action="store_true",
                        help="recognizer: fold the head BNs into the FC in the exported model (same outputs, faster)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    check_export_folder(args.output)
    import paddle  # heavy (paddle): imported on first use

    paddle.set_device("cpu")
    config = import_pretrained(source=args.source, network=args.network, output=args.output,
                               checkpoint=args.checkpoint, fmt=args.format, color_order=args.color_order,
                               fuse_head=args.fuse_head)
    print(f"wrote {args.output}: {config.task} {config.network}, input {config.input_size} {config.color_order}, "
          f"mean {config.mean[0]:g} std {config.std[0]:g}, model_id {config.model_id}")
    if args.checkpoint:
        trainer = "train.py" if config.task == "recognition" else "tools/train_detector.py"
        print(f"wrote checkpoint {args.checkpoint} (fine-tune with: {trainer} --pretrained {args.checkpoint})")
    return 0


if __name__ == "__main__":
    run_cli(main)
