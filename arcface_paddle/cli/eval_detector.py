"""Average precision (IoU 0.5, VOC all-point) of a face detector on a WIDER FACE / RetinaFace annotation file,
overall and for small (< 32 px high), medium (32–96 px) and large (>= 96 px) faces.

    python tools/eval_detector.py --model output/blazeface_sr --annotations data/widerface/val/label.txt
    python tools/eval_detector.py --model inference_model/blazeface_short_range \
        --annotations wider_face_val_bbx_gt.txt --images WIDER_val/images --json ap.json
"""
from __future__ import annotations

import argparse
import json

from arcface_paddle.core.errors import run_cli
from arcface_paddle.core.safe_io import atomic_write
from blazeface_paddle.training.evaluation import evaluate_model


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="training checkpoint / output folder, or an exported model folder (with model.yaml)")
    parser.add_argument("--annotations", required=True, help="wider_face_val_bbx_gt.txt or RetinaFace label.txt")
    parser.add_argument("--images", help="images folder (default: beside the annotation file, or its images/)")
    parser.add_argument("--variant", choices=("short_range", "full_range"), help="for a bare .pdparams file")
    parser.add_argument("--score-threshold", type=float, default=0.05, help="lowest score kept (default 0.05)")
    parser.add_argument("--iou", type=float, default=0.5, help="IoU for a true positive (default 0.5)")
    parser.add_argument("--min-face-size", type=float, default=0.0,
                        help="ignore faces smaller than this many pixels (neither hit nor miss)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--cpu-threads", type=int, default=2, help="for exported models")
    parser.add_argument("--json", help="also write the results here as JSON")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)

    report = evaluate_model(args.model, args.annotations, images_root=args.images, variant=args.variant,
                            score_threshold=args.score_threshold, iou_threshold=args.iou,
                            min_face_size=args.min_face_size, batch_size=args.batch_size,
                            cpu_threads=args.cpu_threads, progress=True)
    print(report.table())
    if args.json:
        with atomic_write(args.json, "w") as handle:
            json.dump(report.as_dict(), handle, indent=2)
        print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    run_cli(main)
