"""Where the shipped default models live: ``inference_model/`` beside the packages (in a checkout and in a wheel)."""
import os

SHIPPED_MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                  "inference_model")
DEFAULT_DETECTOR = os.path.join(SHIPPED_MODELS_DIR, "blazeface_full_range")
SHORT_RANGE_DETECTOR = os.path.join(SHIPPED_MODELS_DIR, "blazeface_short_range")
DEFAULT_RECOGNIZER = os.path.join(SHIPPED_MODELS_DIR, "mobilenet_sface")
