"""Average precision of a BlazeFace detector on an annotation file.

Thin wrapper: the command lives in ``arcface_paddle/cli/eval_detector.py`` (also ``arcface-paddle eval-detector``).
"""
from arcface_paddle.cli.eval_detector import main
from arcface_paddle.core.errors import run_cli

if __name__ == "__main__":
    run_cli(main)
