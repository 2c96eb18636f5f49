"""Align a raw identity tree (RAW/<identity>/<img>) to ArcFace 112×112 crops for training.

    python tools/align_dataset.py --input RAW_TREE --output ALIGNED_TREE [--size 112] [--margin 0]
        [--select largest|center] [--workers 2]

Resumable: files already in the output are skipped. Images that are unreadable or show no face are listed
(and saved in ALIGNED_TREE/align_report.json); the run continues. The output feeds tools/convert_image_bin.py.
"""
from __future__ import annotations

import warnings

from prettytable import PrettyTable

from arcface_paddle.cli.arguments import ArgumentParser
from arcface_paddle.core.errors import run_cli
from arcface_paddle.pipeline.dataset_alignment import align_dataset

# paddle warns about a C++ build cache at import; it means nothing to someone running inference.
warnings.filterwarnings("ignore", message="No ccache found")


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="raw tree: INPUT/<identity>/<image>")
    parser.add_argument("--output", required=True, help="aligned tree, same relative paths")
    parser.add_argument("--size", type=int, default=112, help="crop side in pixels (default 112)")
    parser.add_argument("--margin", type=float, default=0.0,
                        help="extra context in output pixels on each side of the standard ArcFace crop (default 0)")
    parser.add_argument("--select", choices=("largest", "center"), default="largest",
                        help="which face to keep when several are found (default largest)")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    parser.add_argument("--det_model", help="detector folder with model.yaml (default: shipped BlazeFace)")
    parser.add_argument("--det_thresh", type=float, help="detection score threshold (default: the model's)")
    args = parser.parse_args(argv)
    report = align_dataset(args.input, args.output, size=args.size, margin=args.margin, select=args.select,
                           workers=args.workers, det_model=args.det_model, det_thresh=args.det_thresh)
    if report.failed:
        table = PrettyTable(["image (not aligned)", "reason"])
        table.align = "l"
        for path, reason in report.failed:
            table.add_row([path, reason])
        print(table)
    print(f"aligned {report.aligned}, already done {report.already_done}, failed {len(report.failed)} "
          f"→ {args.output} (report: {report.report_path})")
    return 0


if __name__ == "__main__":
    run_cli(main)
