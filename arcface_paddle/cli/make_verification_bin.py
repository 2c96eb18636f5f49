"""Build an InsightFace-style verification ``.bin`` (same/different pairs) from an identity-folder tree.

  python tools/make_verification_bin.py --image_path ALIGNED_TREE --output val.bin --num_pairs 3000 --seed 0
"""
from __future__ import annotations

import argparse
import os

from prettytable import PrettyTable

from arcface_paddle.cli.arguments import ArgumentParser
from arcface_paddle.core.errors import run_cli
from arcface_paddle.core.safe_io import check_output_file, refuse_overwriting_inputs
from arcface_paddle.data.label_file import scan_identity_tree
from arcface_paddle.data.verification_bin import pairs_from_tree, save_verification_bin


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image_path", required=True, help="identity-folder tree root/<person>/<image>")
    parser.add_argument("--output", required=True, help="verification .bin to write")
    parser.add_argument("--num_pairs", type=int, default=3000, help="pairs, half same-person (default 3000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    check_output_file(args.output, "verification file")       # before reading the tree, not after
    entries, _ = scan_identity_tree(args.image_path)
    refuse_overwriting_inputs([args.output], [os.path.join(args.image_path, rel) for rel, _ in entries])
    images, issame = pairs_from_tree(root=args.image_path, num_pairs=args.num_pairs, seed=args.seed)
    save_verification_bin(args.output, images, issame)
    table = PrettyTable(["output", "pairs", "same", "different", "images"])
    table.add_row([args.output, len(issame), int(issame.sum()), int((~issame).sum()), len(images)])
    print(table)
    return 0


if __name__ == "__main__":
    run_cli(main)
