"""Write synthetic faces (seeded people × images) as an identity tree, shards and/or a verification .bin.

  python tools/make_synthetic_dataset.py --output data/synth --num_identities 200 --images_per_identity 20 \
      --format shards --val_identities 100 --num_pairs 1000

Training people are identities 0..N-1; the verification pairs use the held-out identities N..N+V-1.
"""
from __future__ import annotations

import argparse
import os
import time

from prettytable import PrettyTable

from arcface_paddle.cli.arguments import ArgumentParser
from arcface_paddle.core.errors import ToolkitError, run_cli
from arcface_paddle.core.safe_io import check_writable_folder
from arcface_paddle.data.synthetic import write_synthetic_shards, write_synthetic_tree, write_synthetic_verification_bin
from arcface_paddle.synthetic.faces import SyntheticFaces


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--num_identities", type=int, default=100)
    parser.add_argument("--images_per_identity", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image_size", type=int, default=112)
    parser.add_argument("--format", choices=["tree", "shards", "both"], default="shards",
                        help="tree: OUTPUT/images_tree/<id>/<n>.jpg; shards: OUTPUT/shards (images/*.bin + label.txt)")
    parser.add_argument("--val_identities", type=int, default=50, help="held-out people for val.bin (0: none)")
    parser.add_argument("--num_pairs", type=int, default=600, help="pairs in OUTPUT/val.bin")
    args = parser.parse_args(argv)
    if args.num_identities < 1 or args.images_per_identity < 1:
        raise ToolkitError("--num_identities and --images_per_identity must be >= 1")
    if args.val_identities == 1:
        raise ToolkitError("--val_identities must be 0 or >= 2 (different-person pairs need two people)")
    check_writable_folder(args.output, create=False)

    faces = SyntheticFaces(args.num_identities, args.images_per_identity, seed=args.seed, image_size=args.image_size)
    table = PrettyTable(["output", "images", "identities", "seconds"])
    n = args.num_identities * args.images_per_identity
    if args.format in ("tree", "both"):
        start = time.perf_counter()
        path = os.path.join(args.output, "images_tree")
        write_synthetic_tree(faces, path, progress=True)
        table.add_row([path, n, args.num_identities, f"{time.perf_counter() - start:.1f}"])
    if args.format in ("shards", "both"):
        start = time.perf_counter()
        path = os.path.join(args.output, "shards")
        write_synthetic_shards(faces, path, progress=True)
        table.add_row([path, n, args.num_identities, f"{time.perf_counter() - start:.1f}"])
    if args.val_identities:
        start = time.perf_counter()
        path = os.path.join(args.output, "val.bin")
        held_out = range(args.num_identities, args.num_identities + args.val_identities)
        write_synthetic_verification_bin(faces, path, held_out, args.num_pairs)
        table.add_row([path, 2 * args.num_pairs, args.val_identities, f"{time.perf_counter() - start:.1f}"])
    print(table)
    return 0


if __name__ == "__main__":
    run_cli(main)
