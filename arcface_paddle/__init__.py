"""Arcface-Paddle: face recognition training, validation, export and det+rec inference on PaddlePaddle."""
__version__ = "0.1.0"
