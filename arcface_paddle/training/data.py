"""Training data from a config: dataset, deterministic sampler, loader, and validation targets.

Everything a user can get wrong here (missing folder, labels outside ``num_classes``, a missing ``.bin``
target, too little data for one batch) raises :class:`ToolkitError` before the first step; a sample that
cannot be read during training ends the run with its own error at that step (:class:`GuardedSamples`).
"""
from __future__ import annotations

import dataclasses
import os
from typing import List, Optional

import numpy as np
import paddle

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.processes import WorkerDiesWithParent
from arcface_paddle.core.sample_guard import GuardedSamples
from arcface_paddle.core.samplers import GlobalBatchSampler, IdentityBatchSampler
from arcface_paddle.data.datasets import ImageFolderDataset, ShardDataset, SyntheticDataset
from arcface_paddle.data.verification_bin import load_verification_bin

FLIP_STREAM = 0xF1
SPARSE_LABELS_FACTOR, SPARSE_LABELS_SLACK = 4, 10_000     # counted classes ≤ 4 × present identities + 10k


@dataclasses.dataclass
class TrainData:
    dataset: paddle.io.Dataset
    sampler: paddle.io.BatchSampler
    loader: paddle.io.DataLoader
    num_classes: int
    image_size: int
    guard: Optional[GuardedSamples] = None     # every batch ends with statuses: guard.check(statuses)

    @property
    def steps_per_epoch(self) -> int:
        return self.sampler.batches_per_epoch


@dataclasses.dataclass
class ValidationTarget:
    name: str
    path: str
    images: np.ndarray      # N×H×W×3 uint8 RGB
    issame: np.ndarray


def build_dataset(data_config: dict):
    """The training dataset named by ``data.kind`` (flip is applied by the trainer, deterministically)."""

    kind, size = data_config["kind"], int(data_config["image_size"])
    if kind == "synthetic":
        synthetic = data_config["synthetic"]
        return SyntheticDataset(int(synthetic["num_identities"]), int(synthetic["images_per_identity"]),
                                seed=int(synthetic["seed"]), image_size=size, train=False)
    root = data_config.get("root")
    if not root:
        raise ToolkitError(f"data.root: not set (data.kind is {kind!r}; give the training data folder)")
    if not os.path.isdir(root):
        raise ToolkitError(f"{root}: training data folder not found (data.root)")
    if kind == "shards":
        return ShardDataset(root, train=False, image_size=size)
    return ImageFolderDataset(root, label_file=data_config.get("label_file"), train=False, image_size=size)


def check_labels(dataset, num_classes: Optional[int], source: str) -> int:
    """The class count to train with; every label must lie in ``[0, num_classes)``."""
    labels = np.asarray(dataset.labels)
    if labels.size == 0:
        raise ToolkitError(f"{source}: no training images")
    counted = int(dataset.num_classes)
    classes = counted if num_classes is None else int(num_classes)
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= classes:
        bad = low if low < 0 else high
        where = int(np.flatnonzero(labels == bad)[0])
        path = getattr(dataset, "paths", None)
        item = f" ({path[where]})" if path is not None else f" (image {where})"
        raise ToolkitError(f"{source}: label {bad}{item} outside [0, {classes}) — data.num_classes is {classes}")
    distinct = len(np.unique(labels))
    if num_classes is None and classes > SPARSE_LABELS_FACTOR * distinct + SPARSE_LABELS_SLACK:
        # a class-centre matrix of that many rows would exhaust memory for a handful of identities
        raise ToolkitError(f"{source}: labels go up to {high} but only {distinct} identities are present; number "
                           f"them 0..{distinct - 1} (or set data.num_classes if the gaps are meant)")
    return classes


def build_train_data(config: dict, rank: int, world_size: int) -> TrainData:
    data_config = config["data"]
    dataset = build_dataset(data_config)
    source = data_config.get("root") or "synthetic data"
    num_classes = check_labels(dataset, data_config.get("num_classes"), source)
    if config["loss"] == "triplet":
        sampler = IdentityBatchSampler(dataset.labels, config["batch_size"],
                                       config["triplet"]["images_per_identity"], rank=rank,
                                       world_size=world_size, seed=config["seed"])
    else:
        sampler = GlobalBatchSampler(len(dataset), config["batch_size"], rank=rank, world_size=world_size,
                                     seed=config["seed"])
    workers = int(data_config["num_workers"])
    size = int(data_config["image_size"])
    guard = GuardedSamples(dataset, lambda: (np.zeros((3, size, size), np.float32), np.int64(0)))
    # Workers exit when the trainer dies, even by kill -9 (they would otherwise linger for minutes).
    loader = paddle.io.DataLoader(guard, batch_sampler=sampler, num_workers=workers,
                                  use_shared_memory=workers > 0, persistent_workers=workers > 0,
                                  worker_init_fn=WorkerDiesWithParent() if workers > 0 else None)
    return TrainData(dataset, sampler, loader, num_classes, size, guard)


def flip_mask(seed: int, epoch: int, batch: int, global_batch: int, rank: int, batch_size: int) -> np.ndarray:
    """Which images of this rank's slice to mirror: a function of (seed, epoch, batch) over the global batch,
    so any process count (and a resumed run) flips the same images."""
    draws = np.random.default_rng([int(seed), int(epoch), int(batch), FLIP_STREAM]).random(global_batch) < 0.5
    return draws[rank * batch_size:(rank + 1) * batch_size]


def resolve_target(target: str, data_root: Optional[str]) -> tuple:
    """``lfw`` → ``<data.root>/lfw.bin``; a path is used as given.  Returns (name, path)."""
    candidates = [target]
    if data_root and not target.endswith(".bin"):
        candidates.append(os.path.join(data_root, target + ".bin"))
    for path in candidates:
        if os.path.isfile(path):
            name = os.path.splitext(os.path.basename(path))[0]
            return name, path
    raise ToolkitError(f"{candidates[-1]}: validation target not found (validation.targets: {target!r})")


def load_validation_targets(config: dict) -> List[ValidationTarget]:
    targets = []
    for target in config["validation"]["targets"] or []:
        name, path = resolve_target(str(target), config["data"].get("root"))
        images, issame = load_verification_bin(path, image_size=int(config["data"]["image_size"]))
        targets.append(ValidationTarget(name, path, images, issame))
    return targets
