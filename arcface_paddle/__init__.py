"""Arcface-Paddle: face recognition training, validation, export and det+rec inference on PaddlePaddle."""
import os
import warnings

# Paddle's C++ side logs INFO lines ("New Executor is Running.") unless told otherwise; keep users' consoles
# to our own output.  setdefault: an explicit GLOG_minloglevel from the user still wins.
os.environ.setdefault("GLOG_minloglevel", "2")
# Paddle warns about a missing ccache on every import (it only matters when compiling custom C++ ops), and
# about BatchNorm always tracking global statistics in training (which is what we want).
warnings.filterwarnings("ignore", message="No ccache found")
warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")

__version__ = "0.1.0"
