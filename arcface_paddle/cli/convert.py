"""Convert face images to per-image ``.bin`` shards and back, import MXNet RecordIO, write label files.

  python tools/convert_image_bin.py --mode image2bin --image_path DIR --bin_path OUT [--label_file FILE]
  python tools/convert_image_bin.py --mode bin2image --bin_path IN --image_path OUT
  python tools/convert_image_bin.py --mode label --image_path DIR [--label_file FILE]
  python tools/convert_image_bin.py --mode rec2bin --rec train.rec --idx train.idx --bin_path OUT
"""
from __future__ import annotations

import argparse
import os

from prettytable import PrettyTable

from arcface_paddle.cli.arguments import ArgumentParser
from arcface_paddle.core.errors import ToolkitError, run_cli
from arcface_paddle.core.safe_io import atomic_write
from arcface_paddle.data import convert

MAX_LISTED = 50


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", required=True, choices=["image2bin", "bin2image", "label", "rec2bin"])
    parser.add_argument("--image_path", help="identity-folder tree / flat image folder (input or output)")
    parser.add_argument("--bin_path", help="shard dataset folder (images/*.bin + label.txt)")
    parser.add_argument("--label_file", help="image2bin: labels of a flat folder; label: where to write label.txt")
    parser.add_argument("--rec", help="rec2bin: MXNet train.rec")
    parser.add_argument("--idx", help="rec2bin: MXNet train.idx (default: --rec with .idx)")
    parser.add_argument("--workers", type=int, default=0, help="processes (default: all cores)")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    return parser.parse_args(argv)


def _require(args, *names):
    missing = [f"--{n}" for n in names if not getattr(args, n)]
    if missing:
        raise ToolkitError(f"--mode {args.mode} needs {' and '.join(missing)}")


def print_report(mode, report, skipped_file=None):
    table = PrettyTable(["mode", "images", "identities", "skipped", "seconds", "images/s"])
    table.add_row([mode, report.images, report.identities, len(report.skipped), f"{report.seconds:.2f}",
                   f"{report.images_per_second:.0f}"])
    print(table)
    for source, reason in report.skipped[:MAX_LISTED]:
        print(f"skipped {source}: {reason}")
    if len(report.skipped) > MAX_LISTED:
        print(f"... and {len(report.skipped) - MAX_LISTED} more (all listed in {skipped_file})")


def _write_skipped(folder, report):
    if not report.skipped:
        return None
    path = os.path.join(folder, "skipped.txt")
    with atomic_write(path, "w") as handle:
        for source, reason in report.skipped:
            handle.write(f"{source}\t{reason}\n")
    return path


def main(argv=None) -> int:
    args = parse_args(argv)
    progress = not args.no_progress
    if args.mode == "image2bin":
        _require(args, "image_path", "bin_path")
        report = convert.image_to_bin(image_path=args.image_path, bin_path=args.bin_path,
                                      label_file=args.label_file, workers=args.workers, progress=progress,
                                      overwrite=args.overwrite)
        skipped_file = _write_skipped(args.bin_path, report)
    elif args.mode == "bin2image":
        _require(args, "image_path", "bin_path")
        report = convert.bin_to_image(bin_path=args.bin_path, image_path=args.image_path,
                                      workers=args.workers, progress=progress, overwrite=args.overwrite)
        skipped_file = None
    elif args.mode == "label":
        _require(args, "image_path")
        report = convert.write_tree_labels(image_path=args.image_path, label_file=args.label_file)
        skipped_file = None
    else:
        _require(args, "rec", "bin_path")
        idx = args.idx or os.path.splitext(args.rec)[0] + ".idx"
        report = convert.rec_to_bin(rec=args.rec, idx=idx, bin_path=args.bin_path, workers=args.workers,
                                    progress=progress, overwrite=args.overwrite)
        skipped_file = _write_skipped(args.bin_path, report)
    print_report(args.mode, report, skipped_file)
    return 0


if __name__ == "__main__":
    run_cli(main)
