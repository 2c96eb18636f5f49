"""Detect and recognise faces: python test_recognition.py --index demo/index.bin --input demo/query/group.jpg

Thin wrapper: the command lives in ``arcface_paddle/cli/recognize.py`` (also ``arcface-paddle recognize``).
"""
from arcface_paddle.cli.recognize import main
from arcface_paddle.core.errors import run_cli

if __name__ == "__main__":
    run_cli(main)
