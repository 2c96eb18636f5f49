"""Validate a checkpoint or exported model on verification .bin sets: python valid.py --model M

Thin wrapper: the command lives in ``arcface_paddle/cli/valid.py`` (also ``arcface-paddle valid``).
"""
from arcface_paddle.cli.valid import main
from arcface_paddle.core.errors import run_cli

if __name__ == "__main__":
    run_cli(main)
