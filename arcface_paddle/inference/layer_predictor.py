"""Run an eager backbone through the fast inference path: its program exported, then a Paddle Inference predictor.

Validation of a checkpoint (``valid.py``) and in-training validation embed thousands of images; eager CPU
kernels do that several times slower than the same network as a Paddle Inference program with oneDNN.
:func:`predictor_from_layer` saves the layer's program and weights with the exporter every exported model
goes through (:func:`.export.export_model`, legacy format) into a temporary folder, loads them into a
:class:`.recognizer.RecognitionPredictor` and removes the folder — the predictor then holds everything in
memory.  Because it is the same export, a checkpoint and the model exported from it give identical
embeddings, so identical validation numbers.
"""
from __future__ import annotations

import os
import tempfile

from arcface_paddle.inference.export import export_model, recognition_config
from arcface_paddle.inference.recognizer import RecognitionPredictor


def predictor_from_layer(layer, *, network: str, input_size, cpu_threads: int = 2, use_gpu: bool = False,
                         batch_size: int = 128) -> RecognitionPredictor:
    """A predictor computing ``layer`` (eval mode; the layer's own mode is restored) on aligned RGB crops of
    ``input_size`` ([height, width]), normalised as training normalised them."""
    with tempfile.TemporaryDirectory(prefix="arcface-paddle-program-") as folder:
        model_dir = os.path.join(folder, "model")
        export_model(layer, model_dir, recognition_config(network, input_size=list(input_size)), fmt="legacy")
        predictor = RecognitionPredictor(model_dir, batch_size=batch_size, cpu_threads=cpu_threads, use_gpu=use_gpu)
    predictor.predictor.model_dir = f"{network} (program built in memory)"    # the folder is gone: say what it was
    return predictor
