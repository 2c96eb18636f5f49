"""Recognition backbones, found by name: ``get_model("MobileFaceNet_128", embedding_size=128)``."""
# Importing the modules fills the registry.
from arcface_paddle.backbones import iresnet, mobilefacenet, mobilenet_v1  # noqa: F401
from arcface_paddle.backbones.registry import BACKBONES, get_model

__all__ = ["BACKBONES", "get_model"]
