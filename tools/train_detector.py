"""Train or fine-tune BlazeFace.

Thin wrapper: the command lives in ``arcface_paddle/cli/train_detector.py`` (also ``arcface-paddle train-detector``).
"""
from arcface_paddle.cli.train_detector import main
from arcface_paddle.core.errors import run_cli

if __name__ == "__main__":
    run_cli(main)
