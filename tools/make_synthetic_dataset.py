"""Generate a synthetic face dataset (shards + verification .bin).

Thin wrapper: the command lives in ``arcface_paddle/cli/make_synthetic.py`` (also ``arcface-paddle make-synthetic``).
"""
from arcface_paddle.cli.make_synthetic import main
from arcface_paddle.core.errors import run_cli

if __name__ == "__main__":
    run_cli(main)
