"""BlazeFace face detector on PaddlePaddle: model, anchors, decoding, training, evaluation, export."""
__version__ = "0.1.0"
