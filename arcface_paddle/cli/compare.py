"""Compare the largest face in two photos: cosine similarity, distance, same person or not.

    python tools/compare.py img/1_001.jpg img/1_002.jpg [--show pair.png]
"""
from __future__ import annotations

import warnings

from prettytable import PrettyTable

from arcface_paddle.cli.arguments import ArgumentParser
from arcface_paddle.cli.device_options import add_device_arguments, device_options
from arcface_paddle.cli.model_options import add_model_arguments, model_options
from arcface_paddle.core.errors import run_cli
from arcface_paddle.pipeline.photo_compare import compare_images, verdict
from arcface_paddle.stores.vote import DEFAULT_REC_THRESHOLD

# paddle warns about a C++ build cache at import; it means nothing to someone running inference.
warnings.filterwarnings("ignore", message="No ccache found")


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image1")
    parser.add_argument("image2")
    parser.add_argument("--show", metavar="OUT.png", help="write both aligned faces side by side with the score")
    parser.add_argument("--threshold", type=float, default=None,
                        help="cosine similarity at or above which it is the same person (default: the "
                             "recognizer's own threshold from its model.yaml, else "
                             f"{DEFAULT_REC_THRESHOLD}, measured for the shipped SFace model)")
    add_model_arguments(parser, gallery=False)
    parser.add_argument("--cpu_threads", type=int, default=2)
    add_device_arguments(parser)
    parser.add_argument("--font", help="TTF/OTF font for --show")
    args = parser.parse_args(argv)
    result = compare_images(args.image1, args.image2, show=args.show, threshold=args.threshold,
                            cpu_threads=args.cpu_threads, font=args.font, **model_options(args), **device_options(args))
    table = PrettyTable(["image 1", "image 2", "cosine similarity", "distance", "threshold", "verdict"])
    table.add_row([args.image1, args.image2, f"{result.similarity:.4f}", f"{result.distance:.4f}",
                   f"{result.threshold:.4f}", verdict(result)])
    print(table)
    print(f"threshold {result.threshold:.4f}: {result.threshold_source}")
    if args.show:
        print(f"side-by-side → {args.show}")
    return 0


if __name__ == "__main__":
    run_cli(main)
