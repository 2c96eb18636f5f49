"""Command-line front ends, one module per job; ``main.py`` dispatches ``arcface-paddle <command>``.

The top-level scripts (``train.py``, ``valid.py``, ``export_inference_model.py``, ``test_recognition.py``) and
``tools/*.py`` are thin wrappers around these modules, so the reference toolkit's commands keep working.
"""
