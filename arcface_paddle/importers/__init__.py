"""Importers of open pretrained weights into our Paddle networks.

* :func:`import_onnx_recognizer` / :func:`save_imported_checkpoint` — ONNX recognizers (OpenCV's SFace);
* :func:`import_pretrained` — the whole ``tools/import_pretrained.py`` job (also ``.tflite`` BlazeFace via
  ``blazeface_paddle.tflite_import``);
* :func:`load_layer_from_inference_model` — an eager backbone back from a shipped/exported model folder.
"""
from .inference_weights import load_layer_from_inference_model, read_inference_params  # noqa: F401
from .pretrained import import_pretrained  # noqa: F401
from .sface import ImportedRecognizer, import_onnx_recognizer, save_imported_checkpoint  # noqa: F401
