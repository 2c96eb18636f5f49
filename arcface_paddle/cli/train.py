"""Train a face recognition backbone (ArcFace / CosFace with PartialFC, or triplet; optional center loss).

    python train.py --config configs/ms1mv2_mobileface.yaml -o data.root=MS1M_bin
    python train.py --config configs/synthetic_tiny.yaml --output output/tiny
    python train.py --config configs/synthetic_tiny.yaml --output output/tiny --nproc_per_node 2
    python train.py --output output/tiny --resume                  # continue the run with its own config
    python train.py --output output/tiny --resume -o num_epochs=8 --allow-config-change   # ... and change it
    python train.py --config configs/ms1mv2_mobileface.yaml --network MobileNetV1 \\
        --pretrained inference_model/mobilenet_sface          # fine-tune the shipped SFace recognizer

Every config key (configs/base.yaml, arcface_paddle/training/config.py) can be set with ``-o key=value``.
A run keeps its resolved config in OUTPUT/config.yaml and every start in OUTPUT/config_history.yaml;
``--nproc_per_node N`` runs paddle.distributed.launch with its logs in OUTPUT/launch_logs (docs/training_runs.md).
"""
import argparse
import os
import sys

from arcface_paddle.cli.arguments import ArgumentParser
from arcface_paddle.core.errors import ToolkitError, run_cli
from arcface_paddle.core.safe_io import check_writable_folder
from arcface_paddle.core.yaml_config import dump_config, parse_override
from arcface_paddle.training.config import FLAG_KEYS, load_config
from arcface_paddle.training.launcher import launched_by_paddle, run_launcher
from arcface_paddle.training.run_config import run_folder_of, saved_run_config


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", "-c", help="YAML config (may name `base: base.yaml`); with --resume, leave it "
                                               "out to continue with the run's own config")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                        help="set a config key (dotted for nested keys, YAML value), repeatable")
    parser.add_argument("--network", help="backbone name, e.g. MobileFaceNet_128, iResNet50, MobileNetV1")
    parser.add_argument("--lr", type=float, help="learning rate for a global batch of lr_reference_batch")
    parser.add_argument("--batch_size", type=int, help="images per process per step")
    parser.add_argument("--weight_decay", type=float)
    parser.add_argument("--embedding_size", type=int)
    parser.add_argument("--logdir", help="VisualDL log folder (default OUTPUT/vdl)")
    parser.add_argument("--output", help="folder for checkpoints, config.yaml and logs")
    parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CHECKPOINT",
                        help="continue a run: alone, from the newest checkpoint in --output; or from CHECKPOINT")
    parser.add_argument("--allow-config-change", "--allow_config_change", dest="allow_config_change",
                        action="store_true", help="with --resume: accept a config that changes the run's "
                                                  "(recorded in OUTPUT/config_history.yaml)")
    parser.add_argument("--nproc_per_node", type=int, metavar="N",
                        help="train with N processes on this machine (paddle.distributed.launch, logs in "
                             "OUTPUT/launch_logs)")
    parser.add_argument("--pretrained", metavar="CHECKPOINT",
                        help="initialise the backbone from a checkpoint folder or .pdparams (fine-tuning)")
    parser.add_argument("--print_config", action="store_true", help="print the resolved config and exit")
    return parser.parse_args(argv)


def resolve_config(args) -> dict:
    """The config to train with: ``-c`` (+ flags, overrides), or with ``--resume`` and no ``-c`` the run's own."""
    flags = {name: getattr(args, name) for name in FLAG_KEYS}
    if args.config or not args.resume:
        return load_config(args.config, overrides=args.override, flags=flags)
    output = args.output
    for item in args.override:
        key, value = parse_override(item)
        if key == "output":
            output = value
    if output is None and args.resume == "auto":
        raise ToolkitError("--resume: name the run to continue with --output RUN (or give its config with -c)")
    saved, source = saved_run_config(output, args.resume)
    if output is None:      # --resume RUN/checkpoints/step_N: continue in RUN
        flags["output"] = run_folder_of(os.path.dirname(source)) or saved.get("output")
    return load_config(None, overrides=args.override, flags=flags, saved=saved, saved_source=source)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    config = resolve_config(args)
    if args.print_config:
        print(dump_config(config), end="")
        return 0
    check_writable_folder(config["output"], create=False)    # before data and model load, not at the first checkpoint
    if config["logdir"]:
        check_writable_folder(config["logdir"], create=False)
    if args.nproc_per_node is not None and args.nproc_per_node < 1:
        raise ToolkitError(f"--nproc_per_node must be >= 1, got {args.nproc_per_node}")
    if args.nproc_per_node and args.nproc_per_node > 1 and not launched_by_paddle():
        return run_launcher(args.nproc_per_node, config["output"], argv)
    from arcface_paddle.training.trainer import train  # heavy (paddle): imported on first use

    result = train(config, allow_config_change=args.allow_config_change)
    if result.rank == 0:
        print(f"done: step {result.step}, checkpoint {result.checkpoint}")
    return 0


if __name__ == "__main__":
    run_cli(main)
