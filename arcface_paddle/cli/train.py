"""Train a face recognition backbone (ArcFace / CosFace with PartialFC, or triplet; optional center loss).

    python train.py --config configs/ms1mv2_mobileface.yaml -o data.root=MS1M_bin
    python train.py --config configs/synthetic_tiny.yaml --output output/tiny
    python -m paddle.distributed.launch --nproc_per_node 2 train.py --config configs/synthetic_tiny.yaml
    python train.py --config configs/synthetic_tiny.yaml --output output/tiny --resume     # continue
    python train.py --config configs/ms1mv2_mobileface.yaml --network MobileNetV1 \
        --pretrained inference_model/mobilenet_sface          # fine-tune the shipped SFace recognizer

Every config key (configs/base.yaml, arcface_paddle/training/config.py) can be set with ``-o key=value``.
"""
import argparse

from arcface_paddle.core.errors import run_cli
from arcface_paddle.core.yaml_config import dump_config
from arcface_paddle.training.config import FLAG_KEYS, load_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", "-c", help="YAML config (may name `base: base.yaml`)")
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
    parser.add_argument("--pretrained", metavar="CHECKPOINT",
                        help="initialise the backbone from a checkpoint folder or .pdparams (fine-tuning)")
    parser.add_argument("--print_config", action="store_true", help="print the resolved config and exit")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    flags = {name: getattr(args, name) for name in FLAG_KEYS}
    config = load_config(args.config, overrides=args.override, flags=flags)
    if args.print_config:
        print(dump_config(config), end="")
        return 0
    from arcface_paddle.training.trainer import train  # heavy (paddle): imported on first use

    result = train(config)
    if result.rank == 0:
        print(f"done: step {result.step}, checkpoint {result.checkpoint}")
    return 0


if __name__ == "__main__":
    run_cli(main)
