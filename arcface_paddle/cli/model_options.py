"""The model and detection flags the det+rec commands share (``recognize``, ``compare``, ``serve``)."""
from __future__ import annotations

import argparse

from arcface_paddle.stores.vote import DEFAULT_CANDIDATES, DEFAULT_REC_THRESHOLD
from blazeface_paddle.inference.passes import tiling_from_text


def add_model_arguments(parser: argparse.ArgumentParser, gallery: bool = True) -> None:
    """Detector/recognizer folders, thresholds, alignment and the detection passes; ``gallery`` adds the
    gallery-matching flags (``--rec_thresh``, ``--cdd_num``)."""
    group = parser.add_argument_group("models and detection")
    group.add_argument("--det_model", help="detector folder with model.yaml (default: shipped BlazeFace)")
    group.add_argument("--rec_model", help="recognizer folder with model.yaml (default: shipped SFace)")
    group.add_argument("--det_thresh", type=float, help="detection score threshold (default: the model's)")
    group.add_argument("--no-align", dest="align", action="store_false",
                       help="crop the detection box instead of aligning by keypoints")
    group.add_argument("--tile-size", dest="tile_size", default="auto",
                       help="'auto' (default: tiles only large photos whose first pass found small faces), 'off', "
                            "or a tile side in pixels to always scan (e.g. 320 for CCTV-sized faces)")
    group.add_argument("--no-closeup", dest="closeup", action="store_false",
                       help="skip the second pass that finds a face filling the whole photo")
    group.add_argument("--refine-keypoints", dest="refine_keypoints", action="store_true",
                       help="look at each face again before aligning it (closer to the 5-point crop, about twice "
                            "the detection time: docs/detection_quality.md)")
    if gallery:
        group.add_argument("--rec_thresh", type=float, default=None,
                           help="cosine similarity below which a face is 'unknown' (default: the recognizer's own "
                                f"threshold from its model.yaml, else {DEFAULT_REC_THRESHOLD}, measured for SFace)")
        group.add_argument("--cdd_num", type=int, default=DEFAULT_CANDIDATES,
                           help=f"gallery candidates that vote for a name (default {DEFAULT_CANDIDATES})")


def model_options(args: argparse.Namespace) -> dict:
    """``FaceAnalyzer`` keyword options from :func:`add_model_arguments`'s flags."""
    options = {"det_model": args.det_model, "rec_model": args.rec_model, "det_thresh": args.det_thresh,
               "align": args.align, "closeup": args.closeup, "tiling": tiling_from_text(args.tile_size),
               "refine_keypoints": args.refine_keypoints}
    if hasattr(args, "rec_thresh"):
        options.update(rec_thresh=args.rec_thresh, cdd_num=args.cdd_num)
    return options
