"""Importers of open pretrained recognition weights into our Paddle networks (``arcface-paddle import-pretrained``
also imports MediaPipe BlazeFace ``.tflite`` through ``blazeface_paddle.conversion``).

* :func:`import_onnx_recognizer` / :func:`save_imported_checkpoint` — ONNX recognizers (OpenCV's SFace);
* :func:`load_layer_from_inference_model` — an eager backbone back from a shipped/exported model folder.
"""
from arcface_paddle.importers.inference_weights import load_layer_from_inference_model, read_inference_params  # noqa: F401
from arcface_paddle.importers.sface import ImportedRecognizer, import_onnx_recognizer, save_imported_checkpoint  # noqa: F401
