"""Detect and align every face of a raw identity tree for training.

Thin wrapper: the command lives in ``arcface_paddle/cli/align.py`` (also ``arcface-paddle align``).
"""
from arcface_paddle.cli.align import main
from arcface_paddle.core.errors import run_cli

if __name__ == "__main__":
    run_cli(main)
