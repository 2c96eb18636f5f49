"""BlazeFace face detector on PaddlePaddle: model, anchors, decoding, training, evaluation, export."""
import arcface_paddle  # noqa: F401  (shared errors/safe I/O; also silences Paddle's ccache warning)

__version__ = "0.1.0"
