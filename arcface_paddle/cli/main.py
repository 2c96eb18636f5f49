"""``arcface-paddle <command> [options]``: one console command for every job of the toolkit.

Each command is a module of this package with a ``main()`` that parses ``sys.argv``; only the chosen one
is imported, so ``arcface-paddle --help`` answers without loading paddle.
"""
from __future__ import annotations

import importlib
import sys

from arcface_paddle import __version__
from arcface_paddle.core.errors import run_cli

# command → (module in arcface_paddle.cli, one-line summary); ordered as a user meets them
COMMANDS = {
    "convert": ("convert", "image tree / label file / RecordIO ↔ per-image .bin shards"),
    "make-synthetic": ("make_synthetic", "generate a synthetic face dataset (no download needed)"),
    "make-verification-bin": ("make_verification_bin", "write a verification .bin pair set from an identity tree"),
    "align": ("align", "detect + align every face of a raw identity tree for training"),
    "train": ("train", "train a recognition backbone (ArcFace/CosFace + PartialFC, triplet, center loss)"),
    "valid": ("valid", "verification accuracy of a checkpoint or exported model on lfw/cfp_fp/agedb_30 .bin"),
    "export": ("export", "export a checkpoint to a Paddle Inference model folder (+ model.yaml, optional ONNX)"),
    "import-pretrained": ("import_pretrained", "import open weights: SFace .onnx, MediaPipe BlazeFace .tflite"),
    "recognize": ("recognize", "detect + recognise faces in images, folders, videos; build a gallery"),
    "serve": ("serve", "HTTP service + web page: recognise photos, manage a gallery (SQLite, Milvus)"),
    "compare": ("compare", "similarity of the largest face in two photos"),
    "detect": ("detect", "BlazeFace face detection: boxes and keypoints as JSON and drawn images"),
    "train-detector": ("train_detector", "train or fine-tune BlazeFace on WIDER FACE or synthetic scenes"),
    "eval-detector": ("eval_detector", "detector AP: WIDER FACE Easy/Medium/Hard, or an annotation file"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: arcface-paddle <command> [options]   (arcface-paddle <command> --help for its options)",
             "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"arcface-paddle {__version__}")
        return 0
    command = argv[0]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"arcface_paddle.cli.{COMMANDS[command][0]}")
    sys.argv = [f"arcface-paddle {command}", *argv[1:]]     # argparse shows this as the program name
    run_cli(module.main)
    return 0


def entry_point() -> None:
    """The ``arcface-paddle`` console script."""
    sys.exit(main())
