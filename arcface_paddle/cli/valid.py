"""Validate a checkpoint or an exported model on verification sets (LFW, CFP-FP, AgeDB-30 ``.bin`` files).

    python valid.py --model output/run/latest --targets lfw,cfp_fp,agedb_30 --data_dir data/
    python valid.py --model inference_model/MobileFaceNet_128 --data_dir data/ --threads 4
    python valid.py --model inference_model/MobileFaceNet_128 --data_dir data/ --write_thresholds lfw
    python valid.py --model output/run/latest --data_dir data/ --protocol reference
    python valid.py --model backbone.pdparams --network iResNet50 --data_dir data/

RUN/latest is the newest checkpoint of a training run (train.py --output RUN; the default RUN is output/run).
Prints a table and writes ``OUTPUT/results.json`` and ``OUTPUT/roc_<target>.png``.  Protocols: ``exact``
(default: the exact best cut per fold) or ``reference`` (insightface's threshold grid on squared L2
distances, for comparing with published tables); docs/training_runs.md says how they differ.
"""
import argparse
import contextlib
import io
import os
import sys

from arcface_paddle.cli.arguments import ArgumentParser
from arcface_paddle.core.errors import ToolkitError, run_cli
from arcface_paddle.core.safe_io import check_writable_folder
from arcface_paddle.evaluation.metrics import DEFAULT_FARS, PROTOCOLS
from arcface_paddle.evaluation.validate import RESULTS_JSON, validate
from arcface_paddle.evaluation.verification import far_label


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", "--checkpoint", "--pretrained_model", dest="model", required=True,
                        help="checkpoint folder (or training output folder → newest checkpoint), a backbone "
                             ".pdparams file, or an exported model folder with model.yaml")
    parser.add_argument("--network", default=None, help="backbone name; needed only for a bare .pdparams file")
    parser.add_argument("--embedding_size", type=int, default=None, help="for a bare .pdparams file")
    parser.add_argument("--targets", "--target", dest="targets", default="lfw,cfp_fp,agedb_30",
                        help="comma-separated set names; each is read from DATA_DIR/NAME.bin")
    parser.add_argument("--data_dir", required=True, help="folder holding the NAME.bin files")
    parser.add_argument("--batch_size", type=int, default=64, help="images per forward pass (flips double it)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (predictor math library / OMP)")
    parser.add_argument("--output", default="valid_results", help="folder for results.json and ROC PNGs")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="exact",
                        help="accuracy protocol: exact best cut (default) or insightface's reference grid")
    parser.add_argument("--fars", default=",".join(far_label(far) for far in DEFAULT_FARS),
                        help="false accept rates for TAR@FAR and thresholds (default %(default)s)")
    parser.add_argument("--write_thresholds", metavar="TARGET",
                        help="write TARGET's thresholds (best accuracy, each FAR) into the exported model's "
                             "model.yaml; the pipeline then uses them by default")
    parser.add_argument("--no_plot", action="store_true", help="skip the ROC PNGs")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def _import_paddle_quietly():
    """Import paddle without its warning for OMP_NUM_THREADS > 1 (meant for data-parallel training; here the
    threads are what --threads asked for).  Anything else paddle prints still reaches stderr."""

    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        import paddle  # noqa: F401  (imported here to filter its thread warning)
    for line in captured.getvalue().splitlines():
        if not line.startswith(("WARNING: OMP_NUM_THREADS set to", "PLEASE USE OMP_NUM_THREADS WISELY")):
            print(line, file=sys.stderr)


def main(argv=None):
    args = parse_args(argv)
    if args.threads < 1:
        raise ToolkitError(f"--threads must be >= 1, got {args.threads}")
    check_writable_folder(args.output, create=False)    # before the (slow) evaluation, not after it
    os.environ["OMP_NUM_THREADS"] = str(args.threads)   # eager CPU kernels read it when paddle is imported
    _import_paddle_quietly()

    backbone_kwargs = {"embedding_size": args.embedding_size} if args.embedding_size else {}
    results, table = validate(args.model, args.targets, args.data_dir, output_dir=args.output,
                              batch_size=args.batch_size, cpu_threads=args.threads, network=args.network,
                              progress=not args.quiet, plot=not args.no_plot, backbone_kwargs=backbone_kwargs,
                              protocol=args.protocol, fars=args.fars, write_thresholds=args.write_thresholds)
    print(f"protocol: {args.protocol}")
    print(table)
    if args.write_thresholds:
        written = results[args.write_thresholds]
        print(f"thresholds of {args.write_thresholds} → {os.path.join(args.model, 'model.yaml')}: best accuracy "
              f"{written.best_threshold:.4f}" + "".join(f", FAR {far_label(far)} {value:.4f}"
                                                       for far, value in written.threshold_at_far.items()))
    print(f"results: {os.path.join(args.output, RESULTS_JSON)}"
          + ("" if args.no_plot else f"; ROC curves: {os.path.join(args.output, 'roc_<target>.png')}"))
    return 0


if __name__ == "__main__":
    run_cli(lambda: main(sys.argv[1:]))
