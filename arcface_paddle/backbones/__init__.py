"""Recognition backbones, found by name: ``get_model("MobileFaceNet_128", embedding_size=128)``."""
from ..registry import Registry

BACKBONES = Registry("backbone")


def get_model(name: str, **kwargs):
    """Build the backbone registered as ``name`` with keyword options (see each module)."""
    return BACKBONES.build(name, **kwargs)


# Importing the modules fills the registry.
from . import mobilefacenet, iresnet, mobilenet_v1  # noqa: E402,F401
