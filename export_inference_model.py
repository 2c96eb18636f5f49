"""Export a checkpoint to an inference model: python export_inference_model.py --checkpoint C --output D

Thin wrapper: the command lives in ``arcface_paddle/cli/export.py`` (also ``arcface-paddle export``).
"""
from arcface_paddle.cli.export import main
from arcface_paddle.core.errors import run_cli

if __name__ == "__main__":
    run_cli(main)
