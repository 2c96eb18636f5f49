"""The backbone registry: each backbone module registers its constructors here by name."""
from arcface_paddle.core.registry import Registry

BACKBONES = Registry("backbone")


def get_model(name: str, **kwargs):
    """Build the backbone registered as ``name`` with keyword options (see each module)."""
    return BACKBONES.build(name, **kwargs)
