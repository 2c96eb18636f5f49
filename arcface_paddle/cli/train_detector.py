"""Train a BlazeFace face detector on WIDER FACE / RetinaFace-format annotations (or synthetic scenes).

    python tools/train_detector.py -c configs/blazeface_short_range.yaml \
        -o data.train=data/widerface/train/label.txt -o output=output/blazeface_sr
    python tools/train_detector.py -c configs/blazeface_synthetic.yaml --resume auto --export output/bf_synthetic_model
"""
from __future__ import annotations

import argparse
import os

from arcface_paddle.cli.arguments import ArgumentParser
from arcface_paddle.core.errors import ToolkitError, run_cli
from arcface_paddle.core.program_export import check_export_folder
from arcface_paddle.core.safe_io import check_writable_folder
from blazeface_paddle.training.config import load_detector_config


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", required=True, help="YAML config (configs/blazeface_*.yaml)")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. -o max_steps=2000 -o data.num_workers=4")
    parser.add_argument("--output", help="output folder (same as -o output=...)")
    parser.add_argument("--resume", help="'auto' (newest checkpoint in the output folder) or a checkpoint folder")
    parser.add_argument("--pretrained", help="start from these weights: checkpoint folder, .pdparams or .tflite")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--export", metavar="DIR",
                        help="after training, export the final model here (program + params + model.yaml)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import paddle  # heavy (paddle): imported on first use

    from blazeface_paddle.training.trainer import train_detector  # heavy (paddle): imported on first use

    overrides = list(args.override)
    for key in ("output", "resume", "pretrained"):
        if getattr(args, key):
            overrides.append(f"{key}={getattr(args, key)}")
    config = load_detector_config(args.config, overrides=overrides)
    check_writable_folder(config["output"], create=False)    # before training, not at the first checkpoint
    if args.export:
        check_export_folder(args.export)
    paddle.set_device(args.device)
    result = train_detector(config)
    print(f"trained {result.steps} steps; checkpoint: {result.checkpoint}")
    if args.export:
        if result.checkpoint is None:
            raise ToolkitError(f"{result.output}: no checkpoint to export (max_steps already reached elsewhere)")
        from blazeface_paddle.conversion.export import export_detector  # heavy (paddle): imported on first use
        from blazeface_paddle.conversion.weights import load_detector  # heavy (paddle): imported on first use

        export_detector(load_detector(result.checkpoint), args.export,
                        source={"origin": f"trained with tools/train_detector.py -c {args.config}",
                                "checkpoint": os.path.abspath(result.checkpoint)})
        print(f"exported {args.export} (run it with blazeface_paddle.inference.predictor.DetectorPredictor)")
    if result.final_report is not None:
        print(result.final_report.table())
        print(f"evaluation written to {os.path.join(result.output, 'eval.json')}")
    return 0


if __name__ == "__main__":
    run_cli(main)
