"""Write a verification .bin pair set from an identity tree.

Thin wrapper: the command lives in ``arcface_paddle/cli/make_verification_bin.py`` (also ``arcface-paddle make-verification-bin``).
"""
from arcface_paddle.cli.make_verification_bin import main
from arcface_paddle.core.errors import run_cli

if __name__ == "__main__":
    run_cli(main)
