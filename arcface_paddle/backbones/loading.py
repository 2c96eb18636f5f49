"""A backbone back from a training checkpoint: the network and options ``meta.json`` names, the weights checked."""
from __future__ import annotations

import os
from typing import Optional

from arcface_paddle.backbones.registry import get_model
from arcface_paddle.core.checkpoint import BACKBONE_FILE, load_state, load_weights_into, read_meta, resolve_checkpoint
from arcface_paddle.core.errors import ToolkitError

# Backbone options older checkpoints record that no longer exist: iResNet's own ``fp16`` (AMP is now the run's
# ``fp16`` switch alone, see backbones/layers.py).  They never changed the weights, so they are dropped on load.
RETIRED_OPTIONS = ("fp16",)


def load_backbone(path: str, network: Optional[str] = None, **backbone_kwargs):
    """Build a backbone and load its weights; returns ``(layer in eval mode, meta dict)``.

    ``path`` is a checkpoint folder (its ``meta.json`` names the network and its options), an output folder
    (its newest checkpoint is used) or a bare ``.pdparams`` file (then ``network`` is required and
    ``backbone_kwargs`` give the options).  Keyword options given here override those in ``meta.json``.
    Missing, unexpected or wrongly shaped weights raise :class:`ToolkitError`.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        folder = resolve_checkpoint(path)
        meta = read_meta(folder)
        params_path = os.path.join(folder, BACKBONE_FILE)
        network = network or meta.get("network")
        kwargs = {key: value for key, value in (meta.get("backbone_kwargs") or {}).items()
                  if key not in RETIRED_OPTIONS}
        if "embedding_size" not in kwargs and meta.get("embedding_size") is not None:
            kwargs["embedding_size"] = meta["embedding_size"]
        kwargs.update(backbone_kwargs)
    else:
        if not os.path.isfile(path):
            raise ToolkitError(f"{path}: checkpoint not found")
        params_path = path
        meta = {}
        kwargs = dict(backbone_kwargs)
    if not network:
        raise ToolkitError(f"{path}: a bare .pdparams does not say its network; name it (--network on the "
                           f"command line, network= in Python, e.g. MobileFaceNet_128)")
    layer = get_model(network, **kwargs)
    load_weights_into(layer, load_state(params_path), source=params_path)
    layer.eval()
    meta = dict(meta, network=network, backbone_kwargs=kwargs)
    meta.setdefault("embedding_size", kwargs.get("embedding_size"))
    return layer, meta
