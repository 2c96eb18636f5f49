#!/usr/bin/env python
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
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from arcface_paddle.errors import run_cli  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    import paddle

    from arcface_paddle.importers.pretrained import import_pretrained

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
