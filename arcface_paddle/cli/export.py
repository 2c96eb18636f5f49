"""Export a trained backbone to a Paddle Inference model folder (+ model.yaml, optionally ONNX).

    python export_inference_model.py --pretrained_model output/run/latest --output inference_model/my_model
    python export_inference_model.py --network iResNet50 --pretrained_model backbone.pdparams \\
        --embedding_size 512 --output out/iresnet50 --format pir --onnx

RUN/latest is the newest checkpoint of a training run (train.py --output RUN; the default RUN is output/run); the
checkpoint's meta.json names the network.  Writes inference.pdmodel (or inference.json with --format pir)
+ inference.pdiparams + model.yaml [+ inference.onnx]; the same checkpoint always gives byte-identical files.
"""
import argparse
import sys

from arcface_paddle.cli.arguments import ArgumentParser
from arcface_paddle.core.errors import run_cli
from arcface_paddle.core.model_yaml import PROGRAM_NAMES
from arcface_paddle.core.program_export import check_export_folder
from arcface_paddle.inference.export import export_checkpoint


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default=None,
                        help="backbone name (MobileFaceNet_128, iResNet50, ...); read from meta.json for a "
                             "checkpoint folder, required for a bare .pdparams file")
    parser.add_argument("--pretrained_model", "--checkpoint", dest="checkpoint", required=True,
                        help="checkpoint folder (or training output folder → newest) or a backbone .pdparams file")
    parser.add_argument("--output", required=True, help="model folder to write")
    parser.add_argument("--format", choices=["legacy", "pir"], default="legacy",
                        help="legacy: inference.pdmodel (default, what most deployments read); pir: inference.json")
    parser.add_argument("--onnx", action="store_true", help="also write inference.onnx (needs paddle2onnx)")
    parser.add_argument("--embedding_size", type=int, default=None,
                        help="embedding size of a bare .pdparams backbone (default: the network's)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    check_export_folder(args.output)

    options = {"embedding_size": args.embedding_size} if args.embedding_size else {}
    config = export_checkpoint(args.checkpoint, args.output, network=args.network, fmt=args.format,
                               onnx=args.onnx, **options)
    files = [PROGRAM_NAMES[config.format], "inference.pdiparams", "model.yaml"]
    files += ["inference.onnx"] if args.onnx else []
    print(f"exported {config.network} (embedding {config.embedding_size}, input {config.input_size[0]}×"
          f"{config.input_size[1]}, model_id {config.model_id}) to {args.output}: {', '.join(files)}")
    return 0


if __name__ == "__main__":
    run_cli(lambda: main(sys.argv[1:]))
