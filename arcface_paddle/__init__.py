"""Arcface-Paddle: face recognition training, validation, export and det+rec inference on PaddlePaddle."""
import warnings

# Paddle warns about a missing ccache on every import; it only matters when compiling custom C++ ops.
warnings.filterwarnings("ignore", message="No ccache found")

__version__ = "0.1.0"
