"""The trainable parts built from a config: backbone, PartialFC head or triplet loss, center loss.

:class:`Components` also knows which parameters are replicated on every process (their gradients are
summed over processes each step) and which are this process's class-centre shard (never synchronised).
"""
from __future__ import annotations

import dataclasses
from typing import List, Optional, Tuple

import paddle
import paddle.nn as nn

from arcface_paddle.backbones import get_model
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.losses.center import CenterLoss
from arcface_paddle.losses.margin import MARGIN_PRESETS, CombinedMarginLoss
from arcface_paddle.losses.partial_fc import PartialFC
from arcface_paddle.losses.triplet import TripletLoss
from arcface_paddle.training.sync_bn import convert_sync_batchnorm

SHARDED_PREFIXES = ("head.weight",)   # structured names of per-rank class-centre parameters


@dataclasses.dataclass
class Components:
    backbone: nn.Layer
    head: Optional[nn.Layer]            # PartialFC (softmax losses) or None (triplet)
    triplet: Optional[nn.Layer]
    center: Optional[nn.Layer]
    backbone_kwargs: dict

    def named_parameters(self) -> List[Tuple[str, paddle.Tensor]]:
        """Trainable parameters with structured names (``backbone.fc.weight``, ``head.weight`` ...)."""
        named = []
        for prefix, layer in (("backbone", self.backbone), ("head", self.head), ("center_loss", self.center)):
            if layer is not None:
                named += [(f"{prefix}.{name}", p) for name, p in layer.named_parameters() if not p.stop_gradient]
        return named

    def replicated_parameters(self) -> list:
        return [p for name, p in self.named_parameters() if not name.startswith(SHARDED_PREFIXES)]

    def trained_center_table(self) -> Optional[paddle.Tensor]:
        """The center-loss centres when the optimizer trains them (a classes × D table whose gradient rows
        outside the batch's classes are zero: summed over ranks row-wise, not whole)."""
        if self.center is not None and self.center.update == "gradient":
            return self.center.centers
        return None

    def train(self) -> None:
        for layer in (self.backbone, self.head, self.triplet, self.center):
            if layer is not None:
                layer.train()


def backbone_options(config: dict) -> dict:
    """Keyword options for ``get_model``: the config's backbone_kwargs + embedding size + input size."""
    kwargs = dict(config.get("backbone_kwargs") or {})
    kwargs["embedding_size"] = int(config["embedding_size"])
    kwargs.setdefault("input_size", int(config["data"]["image_size"]))
    return kwargs


def build_backbone(config: dict) -> Tuple[nn.Layer, dict]:
    kwargs = backbone_options(config)
    if "fp16" in kwargs:
        raise ToolkitError("backbone_kwargs.fp16: backbones have no AMP option of their own any more; set fp16: true "
                           "(the run's one switch: convolutions in fp16 on GPU, embedding head in float32)")
    try:
        return get_model(config["network"], **kwargs), kwargs
    except (TypeError, ValueError) as error:
        raise ToolkitError(f"network {config['network']}: bad options {kwargs} ({error})") from None


def margin_values(config: dict) -> Tuple[float, float, float, float]:
    """(s, m1, m2, m3): the preset of ``loss`` with any value set under ``margin`` replacing it."""

    preset = MARGIN_PRESETS[config["loss"]]
    margin = config["margin"]
    s = 64.0 if margin.get("s") is None else float(margin["s"])
    m = [preset[i] if margin.get(key) is None else float(margin[key]) for i, key in enumerate(("m1", "m2", "m3"))]
    return (s, *m)


def build_components(config: dict, num_classes: int, world_size: int, on_gpu: bool) -> Components:
    if config["sparse_update"] and (config["loss"] == "triplet" or config["optimizer"] != "sgd"):
        raise ToolkitError(f"sparse_update: steps the PartialFC centres with SGD momentum; it needs a softmax loss and "
                           f"optimizer sgd (this run: loss {config['loss']}, optimizer {config['optimizer']})")
    backbone, kwargs = build_backbone(config)
    if world_size > 1 and config["sync_bn"]:
        backbone = (paddle.nn.SyncBatchNorm.convert_sync_batchnorm(backbone) if on_gpu
                    else convert_sync_batchnorm(backbone))
    embedding_size = int(config["embedding_size"])
    head = triplet = center = None
    if config["loss"] == "triplet":
        triplet = TripletLoss(config["triplet"]["margin"], config["triplet"]["mining"])
    else:
        head = PartialFC(embedding_size, num_classes, sample_ratio=float(config["sample_ratio"]),
                         margin_loss=CombinedMarginLoss(*margin_values(config)), init_seed=int(config["seed"]),
                         check_labels=False,   # labels were checked once, before training
                         sparse_update=bool(config["sparse_update"]))
    weight = float(config["center_loss_weight"])
    if weight > 0:
        options = config["center_loss"]
        center = CenterLoss(num_classes, embedding_size, update=options["update"], alpha=float(options["alpha"]))
        # Centres learn from the unweighted center loss at lr × lr_scale, whatever the weight.
        center.centers.optimize_attr["learning_rate"] = float(options["lr_scale"]) / weight
        center.centers.regularizer = paddle.regularizer.L2Decay(0.0)
    return Components(backbone, head, triplet, center, kwargs)
