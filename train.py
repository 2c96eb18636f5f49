"""Train a face recognition backbone: python train.py --config configs/synthetic_tiny.yaml

Thin wrapper: the command lives in ``arcface_paddle/cli/train.py`` (also ``arcface-paddle train``).
"""
from arcface_paddle.cli.train import main
from arcface_paddle.core.errors import run_cli

if __name__ == "__main__":
    run_cli(main)
