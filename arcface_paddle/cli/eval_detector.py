"""Average precision of a face detector: the official WIDER FACE protocol (Easy / Medium / Hard), or IoU 0.5 AP
on any WIDER FACE / RetinaFace annotation file, overall and for small (< 32 px high), medium (32–96 px) and
large (>= 96 px) faces.

    arcface-paddle eval-detector --model inference_model/blazeface_full_range \
        --wider-gt eval_tools/ground_truth --images WIDER_val/images [--save-predictions preds/]
    arcface-paddle eval-detector --wider-gt eval_tools/ground_truth --predictions preds/   # score saved files
    arcface-paddle eval-detector --model output/blazeface_sr --annotations data/widerface/val/label.txt
    arcface-paddle eval-detector --model inference_model/blazeface_short_range \
        --annotations wider_face_val_bbx_gt.txt --images WIDER_val/images --json ap.json

``--wider-gt`` is the ``ground_truth`` folder of the official evaluation tools (wider_face_val.mat and
wider_easy/medium/hard_val.mat); exported models then run with the detection passes of the pipeline
(close-up pass, ``--tiling``).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from arcface_paddle.cli.arguments import ArgumentParser
from arcface_paddle.core.errors import ToolkitError, run_cli
from arcface_paddle.core.safe_io import atomic_write, check_output_file, refuse_overwriting_inputs
from blazeface_paddle.inference.passes import MultiPassDetector, tiling_from_text
from blazeface_paddle.inference.predictor import DetectorPredictor
from blazeface_paddle.training import wider_protocol
from blazeface_paddle.training.evaluation import evaluate_model


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model",
                        help="training checkpoint / output folder, or an exported model folder (with model.yaml)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--annotations", help="wider_face_val_bbx_gt.txt or RetinaFace label.txt")
    source.add_argument("--wider-gt", help="official WIDER FACE ground_truth folder: Easy/Medium/Hard protocol")
    parser.add_argument("--predictions", help="with --wider-gt: score these prediction files instead of a model")
    parser.add_argument("--save-predictions", help="with --wider-gt: also write the predictions here "
                                                   "(<event>/<image>.txt, the official submission layout)")
    parser.add_argument("--tiling", default="auto",
                        help="with --wider-gt: 'auto' (default), 'off' or a tile side in pixels")
    parser.add_argument("--no-closeup", action="store_true", help="with --wider-gt: no close-up pass")
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


def wider_predictions(args, ground_truth) -> dict:
    if args.predictions:
        return wider_protocol.read_predictions(args.predictions, ground_truth)
    if not args.model or not args.images:
        raise ToolkitError("--wider-gt needs --model and --images (WIDER_val/images), or --predictions")
    detector = MultiPassDetector(DetectorPredictor(args.model, cpu_threads=args.cpu_threads,
                                                   score_threshold=args.score_threshold),
                                 closeup=not args.no_closeup, tiling=tiling_from_text(args.tiling))

    def detect(image):
        faces = detector.detect(image)
        return (np.array([face.box for face in faces], np.float32).reshape(-1, 4),
                np.array([face.score for face in faces], np.float32))

    return wider_protocol.detect_wider(detect, ground_truth, args.images, progress=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.json:
        check_output_file(args.json, "--json file")       # before the evaluation, not after it
        refuse_overwriting_inputs([args.json], [path for path in (args.annotations, args.wider_gt) if path])
    if args.wider_gt:
        ground_truth = wider_protocol.load_ground_truth(args.wider_gt)
        predictions = wider_predictions(args, ground_truth)
        if args.save_predictions:
            wider_protocol.write_predictions(args.save_predictions, predictions)
            print(f"wrote predictions to {args.save_predictions}")
        return show_report(wider_protocol.evaluate_wider(predictions, ground_truth, iou_threshold=args.iou),
                           args.json)
    if not args.model:
        raise ToolkitError("--annotations needs --model")
    report = evaluate_model(args.model, args.annotations, images_root=args.images, variant=args.variant,
                            score_threshold=args.score_threshold, iou_threshold=args.iou,
                            min_face_size=args.min_face_size, batch_size=args.batch_size,
                            cpu_threads=args.cpu_threads, progress=True)
    return show_report(report, args.json)


def show_report(report, json_path) -> int:
    """Print the AP table; write it as JSON too when asked."""
    print(report.table())
    if json_path:
        with atomic_write(json_path, "w") as handle:
            json.dump(report.as_dict(), handle, indent=2)
        print(f"written {json_path}")
    return 0


if __name__ == "__main__":
    run_cli(main)
