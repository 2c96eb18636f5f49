"""Convert image trees, label files and RecordIO to per-image .bin shards and back.

Thin wrapper: the command lives in ``arcface_paddle/cli/convert.py`` (also ``arcface-paddle convert``).
"""
from arcface_paddle.cli.convert import main
from arcface_paddle.core.errors import run_cli

if __name__ == "__main__":
    run_cli(main)
