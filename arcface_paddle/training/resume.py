"""Saving and restoring the full training state: weights, class-centre shards, optimizer, data position.

The data position is (epoch, batches consumed in that epoch, global batch size); the samplers' order is a
function of (seed, epoch) and per-step randomness is seeded from (seed, step, rank), so restoring the
position restores the run exactly.  A run resumed on a different number of processes re-splits the class
centres and their optimizer accumulators, and converts the position through the number of images consumed.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Optional

import paddle.distributed as dist

from arcface_paddle.backbones.loading import RETIRED_OPTIONS
from arcface_paddle.core import checkpoint as ckpt
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.model_yaml import MODEL_CONFIG_NAME, load_model_config
from arcface_paddle.importers.inference_weights import read_inference_params
from arcface_paddle.losses.distributed import reshard_rows
from arcface_paddle.preprocessing import TRAIN_MEAN, TRAIN_STD
from arcface_paddle.training.amp import load_scaler_state, scaler_state
from arcface_paddle.training.checkpoint import load_center_shards, load_optimizer_state

CENTER_LOSS_FILE = "center_loss.pdparams"
VELOCITY_PREFIX = "head.weight_velocity_"   # Paddle Momentum's accumulator of the centres (structured name)
FORMAT_VERSION = 1


@dataclasses.dataclass
class TrainState:
    epoch: int = 0              # 0-based epoch in progress
    batch_in_epoch: int = 0     # global batches of that epoch already consumed
    step: int = 0               # optimizer steps done


def build_meta(config: dict, components, state: TrainState, *, num_classes: int, global_batch: int,
               scaler_state: Optional[dict] = None) -> dict:
    size = int(config["data"]["image_size"])
    return {
        "format_version": FORMAT_VERSION,
        "network": config["network"],
        "backbone_kwargs": components.backbone_kwargs,
        "embedding_size": int(config["embedding_size"]),
        "input_size": [size, size],
        "normalization": {"mean": TRAIN_MEAN, "std": TRAIN_STD, "color_order": "RGB"},
        "num_classes": int(num_classes),
        "loss": config["loss"],
        "epoch": state.epoch,
        "batch_in_epoch": state.batch_in_epoch,
        "global_batch": int(global_batch),
        "seed": int(config["seed"]),
        "rng": "per-step seeds derived from (seed, step, rank); sampler order from (seed, epoch)",
        "amp_scaler": scaler_state,
        "config": config,
    }


def save_training_state(config: dict, components, optimizer, state: TrainState, *, num_classes: int,
                        global_batch: int, rank: int, world_size: int, scaler=None) -> str:

    meta = build_meta(config, components, state, num_classes=num_classes, global_batch=global_batch,
                      scaler_state=scaler_state(scaler))
    optimizer_state = ckpt.optimizer_state_by_structure(optimizer.state_dict(), components.named_parameters())
    folder = ckpt.save_checkpoint(
        config["output"], state.step, meta=meta, backbone_state=components.backbone.state_dict(),
        class_centers_state=components.head.state_dict() if components.head is not None else None,
        optimizer_state=optimizer_state, rank=rank, world_size=world_size,
        keep=int(config["keep_checkpoints"]), barrier=dist.barrier if world_size > 1 else None,
        extra_states={CENTER_LOSS_FILE: components.center.state_dict()} if components.center is not None else None)
    return folder


def find_resume_checkpoint(config: dict) -> Optional[str]:
    """The folder ``resume`` points at; ``auto`` → newest under ``output`` (None when there is none yet)."""
    resume = config.get("resume")
    if not resume:
        return None
    if resume == "auto":
        return ckpt.latest_checkpoint(config["output"])
    return ckpt.resolve_checkpoint(resume)


def restore_training_state(folder: str, config: dict, components, optimizer, *, num_classes: int,
                           global_batch: int, rank: int, world_size: int, scaler=None, log=print) -> TrainState:
    meta = ckpt.read_meta(folder)
    for key, expected in (("network", config["network"]), ("embedding_size", int(config["embedding_size"])),
                          ("num_classes", int(num_classes)), ("loss", config["loss"])):
        if meta.get(key) != expected:
            raise ToolkitError(f"{folder}: checkpoint has {key} {meta.get(key)!r} but the config asks for "
                               f"{expected!r}; resume with the same setup or start a new output folder")
    ckpt.load_weights_into(components.backbone, ckpt.load_state(os.path.join(folder, ckpt.BACKBONE_FILE)),
                           source=os.path.join(folder, ckpt.BACKBONE_FILE))
    saved_world = int(meta.get("world_size", 1))
    if components.center is not None:
        path = os.path.join(folder, CENTER_LOSS_FILE)
        ckpt.load_weights_into(components.center, ckpt.load_state(path), source=path)
    saved_optimizer = load_optimizer_state(folder, rank, world_size, sharded=("head.weight",))
    if components.head is not None:
        saved_optimizer = _restore_class_centres(folder, components.head, saved_optimizer, rank, world_size)
    if saved_optimizer is not None:
        optimizer.set_state_dict(ckpt.optimizer_state_from_structure(saved_optimizer,
                                                                     components.named_parameters()))
    load_scaler_state(scaler, meta.get("amp_scaler"))
    state = TrainState(int(meta["epoch"]), int(meta.get("batch_in_epoch", 0)), int(meta["step"]))
    saved_batch = int(meta.get("global_batch", global_batch))
    if saved_batch != global_batch:
        consumed = state.batch_in_epoch * saved_batch
        state.batch_in_epoch = math.ceil(consumed / global_batch)
        log(f"global batch changed {saved_batch} → {global_batch}: continuing epoch {state.epoch + 1} after "
            f"{consumed} images (batch {state.batch_in_epoch}); the run is no longer step-identical")
    if saved_world != world_size:
        log(f"resuming a {saved_world}-process checkpoint on {world_size} processes: class centres re-split")
    return state


def adopt_backbone_options(config: dict, path: Optional[str], log=print) -> None:
    """Fill backbone options the config leaves unset from a checkpoint's ``meta.json`` (the run being
    resumed, or ``--pretrained`` weights such as an imported SFace MobileNetV1 with its width and dropout),
    so the network built matches the weights."""
    if not path or not os.path.isdir(path):
        return
    if _is_inference_model(path):
        _check_network(path, _inference_model_config(path).network, config["network"])
        return
    meta = ckpt.read_meta(ckpt.resolve_checkpoint(path))
    if meta.get("network") and meta["network"] != config["network"]:
        raise ToolkitError(f"{path}: checkpoint is a {meta['network']} but network is "
                           f"{config['network']} (set --network {meta['network']})")
    own = config.setdefault("backbone_kwargs", {})
    adopted = {key: value for key, value in (meta.get("backbone_kwargs") or {}).items()
               if key not in own and key not in ("embedding_size", "input_size", *RETIRED_OPTIONS)}
    if adopted:
        own.update(adopted)
        log(f"backbone options from {path}: {adopted}")


def load_pretrained_backbone(backbone, path: str, *, network: str, skip: tuple = (), log=print) -> None:
    """Initialise ``backbone`` from a checkpoint folder, a ``.pdparams`` file or an exported inference model
    folder with ``model.yaml`` (e.g. the shipped ``inference_model/mobilenet_sface``) — fine-tuning."""
    if _is_inference_model(path):
        _check_network(path, _inference_model_config(path).network, network)
        params = os.path.join(path, "inference.pdiparams")
        skipped = ckpt.load_weights_into(backbone, read_inference_params(path), source=params,
                                         allow_missing=tuple(skip), allow_unexpected=bool(skip))
        log(f"initialised {network} from {params}" + (f" (kept fresh: {', '.join(skipped)})" if skipped else ""))
        return
    if os.path.isdir(path):
        folder = ckpt.resolve_checkpoint(path)
        meta = ckpt.read_meta(folder)
        if meta.get("network") and meta["network"] != network:
            raise ToolkitError(f"{path}: pretrained checkpoint is a {meta['network']} but network is {network}")
        params = os.path.join(folder, ckpt.BACKBONE_FILE)
    else:
        params = path
    skipped = ckpt.load_weights_into(backbone, ckpt.load_state(params), source=params,
                                     allow_missing=tuple(skip), allow_unexpected=bool(skip))
    log(f"initialised {network} from {params}" + (f" (kept fresh: {', '.join(skipped)})" if skipped else ""))


def _is_inference_model(path) -> bool:
    return (bool(path) and os.path.isdir(path) and os.path.isfile(os.path.join(path, MODEL_CONFIG_NAME))
            and not os.path.isfile(os.path.join(path, ckpt.META_FILE)))


def _inference_model_config(path):
    config = load_model_config(path)
    if config.task != "recognition":
        raise ToolkitError(f"{path}: model.yaml task is {config.task!r}; --pretrained needs a recognition model")
    return config


def _check_network(path: str, saved: Optional[str], wanted: str) -> None:
    if saved and saved != wanted:
        raise ToolkitError(f"{path}: checkpoint is a {saved} but network is {wanted} (set --network {saved})")


def _restore_class_centres(folder: str, head, saved_optimizer: Optional[dict], rank: int,
                           world_size: int) -> Optional[dict]:
    """Load this rank's centres (re-split for ``world_size``) and their momentum, whichever way each run kept it:
    ``sparse_update`` keeps it beside the centres, the dense optimizer under ``head.weight_velocity_*`` — a run
    may switch ``sparse_update`` when it resumes.  Returns the optimizer state to restore."""
    shards = load_center_shards(folder)
    saved_sparse = all("momentum" in shard for shard in shards)
    velocity_key = next((key for key in (saved_optimizer or {}) if key.startswith(VELOCITY_PREFIX)), None)
    if head.sparse_update:
        momentum = [shard["momentum"] for shard in shards] if saved_sparse else None
        if momentum is None and velocity_key is not None:      # dense run → sparse_update
            momentum = [ckpt.load_rank_optimizer_state(folder, r)[velocity_key] for r in range(len(shards))]
        head.load_center_shards([shard["weight"] for shard in shards], momentum)
        return saved_optimizer
    head.load_center_shards([shard["weight"] for shard in shards])
    if saved_sparse and velocity_key is None and saved_optimizer is not None:   # sparse_update run → dense
        saved_optimizer = dict(saved_optimizer)
        saved_optimizer[VELOCITY_PREFIX + "0"] = reshard_rows([shard["momentum"] for shard in shards], rank,
                                                              world_size, head.num_classes,
                                                              what=f"{folder}: centre momentum")
    return saved_optimizer
