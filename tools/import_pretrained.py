"""Import open weights (SFace .onnx, MediaPipe BlazeFace .tflite) as inference models.

Thin wrapper: the command lives in ``arcface_paddle/cli/import_pretrained.py`` (also ``arcface-paddle import-pretrained``).
"""
from arcface_paddle.cli.import_pretrained import main
from arcface_paddle.core.errors import run_cli

if __name__ == "__main__":
    run_cli(main)
