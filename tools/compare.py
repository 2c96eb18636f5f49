"""Compare the largest face in two photos: python tools/compare.py a.jpg b.jpg

Thin wrapper: the command lives in ``arcface_paddle/cli/compare.py`` (also ``arcface-paddle compare``).
"""
from arcface_paddle.cli.compare import main
from arcface_paddle.core.errors import run_cli

if __name__ == "__main__":
    run_cli(main)
