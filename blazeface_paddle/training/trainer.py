"""BlazeFace training: annotation file → augment → anchor targets → BlazeFace → loss, on CPU or GPU.

``train_detector(config)`` (a dict from :func:`blazeface_paddle.training.config.load_detector_config`) runs
``max_steps`` optimizer steps over epochs of a seeded permutation, logs to VisualDL, saves checkpoints
in the recognition trainer's layout (``OUTPUT/checkpoints/step_000500/{backbone.pdparams,
optimizer_rank0.pdopt, meta.json}``, ``OUTPUT/latest``), scores AP on ``data.val`` and resumes exactly:
data order and augmentation depend only on (seed, epoch, index), so a resumed run sees the batches the
interrupted one would have seen.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import List, Optional

import numpy as np
import paddle
from tqdm import tqdm
from visualdl import LogWriter

from arcface_paddle.core import checkpoint as ckpt
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.images import normalize_rgb_uint8
from arcface_paddle.core.lr_schedule import lr_at
from arcface_paddle.core.safe_io import atomic_write
from arcface_paddle.core.sample_guard import GuardedSamples
from arcface_paddle.core.samplers import GlobalBatchSampler
from arcface_paddle.core.yaml_config import dump_config
from blazeface_paddle.conversion.weights import load_pretrained
from blazeface_paddle.network.model import BlazeFace
from blazeface_paddle.network.variants import INPUT_MEAN, INPUT_STD
from blazeface_paddle.training.anchor_matching import AnchorMatcher, initialize_heads
from blazeface_paddle.training.annotations import (
    NUM_KEYPOINTS,
    DetectionDataset,
    read_annotations,
    resolve_images_root,
)
from blazeface_paddle.training.augment import DetectionAugment
from blazeface_paddle.training.evaluation import DetectionReport, LayerDetector, evaluate_on_annotations
from blazeface_paddle.training.loss import LossWeights, detection_loss
from blazeface_paddle.training.synthetic_scenes import SyntheticScenes

NETWORK_NAME = "BlazeFace"


class TrainingSample:
    """Per-sample transform: augment → letterbox → anchor targets → network input arrays."""

    def __init__(self, augment: DetectionAugment, matcher: AnchorMatcher):
        self.augment, self.matcher = augment, matcher

    def __call__(self, image, faces, rng):
        image, (boxes, keypoints, mask) = self.augment(image, faces, rng)
        targets = self.matcher(boxes, keypoints, mask)
        return (normalize_rgb_uint8(image, INPUT_MEAN[0], INPUT_STD[0]), targets.labels.astype(np.int64), targets.regression,
                targets.keypoint_mask)


@dataclasses.dataclass
class TrainResult:
    output: str
    steps: int
    losses: List[dict]                     # {"step", "lr", "loss", "box", "keypoint", "score", "num_positive"}:
                                           # means over each log_every window
    evaluations: List[dict]                # {"step", "ap", ...} per validation
    checkpoint: Optional[str]
    final_report: Optional[DetectionReport] = None


def prepare_synthetic_data(config: dict) -> None:
    """When ``data.synthetic`` asks for scenes, write them once under ``<output>/synthetic`` and point
    ``data.train`` / ``data.val`` at them."""

    spec = config["data"]["synthetic"]
    common = dict(image_size=spec["image_size"], faces_per_scene=tuple(spec["faces_per_scene"]),
                  face_height=tuple(spec["face_height"]))
    for split, count, seed in (("train", spec["train_scenes"], spec["seed"]), ("val", spec["val_scenes"], spec["val_seed"])):
        if int(count) <= 0:
            continue
        root = os.path.join(config["output"], "synthetic", split)
        label, recipe_path = os.path.join(root, "label.txt"), os.path.join(root, "scenes.json")
        recipe = {"seed": int(seed), "num_scenes": int(count),
                  **{key: [float(v) for v in np.ravel(value)] for key, value in common.items()}}
        if not (os.path.isfile(label) and _read_json(recipe_path) == recipe):   # reuse scenes only if identical
            SyntheticScenes(seed=int(seed), **common).write(root, int(count))
            with atomic_write(recipe_path, "w") as handle:
                json.dump(recipe, handle)
        config["data"][split], config["data"][f"{split}_images"] = label, root


def _read_json(path: str):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _optimizer(config: dict, parameters):
    clip = paddle.nn.ClipGradByGlobalNorm(config["grad_clip_norm"]) if config["grad_clip_norm"] > 0 else None
    decay = config["weight_decay"] or None
    if config["optimizer"] == "adam":
        return paddle.optimizer.Adam(learning_rate=float(config["lr"]), parameters=parameters, weight_decay=decay,
                                     grad_clip=clip)
    return paddle.optimizer.Momentum(learning_rate=float(config["lr"]), momentum=float(config["momentum"]), parameters=parameters,
                                     weight_decay=decay, grad_clip=clip)


class DetectorTrainer:
    def __init__(self, config: dict, progress: bool = True):

        self.config, self.progress = config, progress
        if any(int(config["data"]["synthetic"][key]) > 0 for key in ("train_scenes", "val_scenes")):
            prepare_synthetic_data(config)
        if not config["data"]["train"]:
            raise ToolkitError("config data.train: no training annotation file given")
        paddle.seed(int(config["seed"]))
        self.model = BlazeFace(config["variant"])
        self.matcher = AnchorMatcher(self.model.variant, **config["matching"])
        augment = DetectionAugment(input_size=self.model.variant.input_size, **config["augment"])
        self.dataset = DetectionDataset(config["data"]["train"], config["data"]["train_images"],
                                        transform=TrainingSample(augment, self.matcher),
                                        min_face_size=config["data"]["min_face_size"], seed=config["seed"])

        size = self.model.variant.input_size
        blank = (np.zeros((size, size, 3), np.uint8),
                 (np.zeros((0, 4), np.float32), np.zeros((0, NUM_KEYPOINTS, 2), np.float32),
                  np.zeros((0, NUM_KEYPOINTS), bool)))
        # an unreadable image ends training with its own error (see GuardedSamples), not a hung loader
        self.samples = GuardedSamples(self.dataset, lambda: self.dataset.transform(*blank, np.random.default_rng(0)))
        self.sampler = GlobalBatchSampler(len(self.dataset), config["batch_size"], seed=config["seed"])
        self.optimizer = _optimizer(config, self.model.parameters())
        self.loss_weights = LossWeights(**config["loss"])
        self.normalizer = paddle.to_tensor(self.matcher.regression_normalizer())
        self.val_annotations, self.val_images = None, None
        if config["data"]["val"]:
            self.val_annotations = read_annotations(config["data"]["val"], min_face_size=config["data"]["min_face_size"])
            self.val_images = resolve_images_root(config["data"]["val"], self.val_annotations, config["data"]["val_images"])
        self.step = 0
        self._start()

    # ---------------------------------------------------------------------------- initial weights
    def _start(self) -> None:
        config = self.config
        resume = config["resume"]
        if resume:
            folder = ckpt.resolve_checkpoint(config["output"] if resume == "auto" else resume)
            meta = ckpt.read_meta(folder)
            if meta.get("network") != NETWORK_NAME or meta.get("variant") != self.model.variant.name:
                raise ToolkitError(f"{folder}: checkpoint of {meta.get('network')} {meta.get('variant')}, "
                                   f"not {NETWORK_NAME} {self.model.variant.name}")
            load_pretrained(self.model, folder)
            saved = ckpt.load_rank_optimizer_state(folder, 0)
            if saved is not None:
                self.optimizer.set_state_dict(
                    ckpt.optimizer_state_from_structure(saved, self.model.named_parameters()))
            self.step = int(meta["step"])
        elif config["pretrained"]:
            load_pretrained(self.model, config["pretrained"])
        elif config["init_heads"]:
            initialize_heads(self.model, self.matcher)

    # ------------------------------------------------------------------------------------- loop
    def _batches(self):
        per_epoch = self.sampler.batches_per_epoch
        epoch, start = divmod(self.step, per_epoch)
        while True:
            self.sampler.set_epoch(epoch, start)
            self.dataset.set_epoch(epoch)
            loader = paddle.io.DataLoader(self.samples, batch_sampler=self.sampler,
                                          num_workers=int(self.config["data"]["num_workers"]))
            for *batch, statuses in loader:
                self.samples.check(statuses.numpy())
                yield epoch, batch
            epoch, start = epoch + 1, 0

    def train(self) -> TrainResult:
        config = self.config
        os.makedirs(config["output"], exist_ok=True)
        with atomic_write(os.path.join(config["output"], "config.yaml"), "w") as handle:
            handle.write(dump_config(config))
        total = int(config["max_steps"])
        losses, evaluations, saved, window = [], [], None, []
        schedule = dict(base_lr=float(config["lr"]), total_steps=total, warmup_steps=config["warmup_steps"],
                        schedule=config["lr_schedule"], decay_steps=config["decay_steps"], min_lr=config["min_lr"])
        self.model.train()
        bar = tqdm(total=total, initial=self.step, desc="training", disable=not self.progress)
        # the bar is closed (its line ended) however training ends, so an error prints on a line of its own
        with LogWriter(logdir=config["logdir"] or os.path.join(config["output"], "vdl")) as writer, bar:
            batches = self._batches()
            while self.step < total:
                epoch, (images, labels, regression, keypoint_mask) = next(batches)
                lr = lr_at(self.step, **schedule)
                self.optimizer.set_lr(lr)
                regressors, logits = self.model(images)
                terms = detection_loss(regressors, logits, labels, regression, keypoint_mask, self.normalizer,
                                       self.loss_weights)
                if not np.isfinite(float(terms["loss"])):
                    raise ToolkitError(f"{config['output']}: loss became {float(terms['loss'])} at step "
                                       f"{self.step + 1}; lower lr (now {lr:g}) or set grad_clip_norm")
                terms["loss"].backward()
                self.optimizer.step()
                self.optimizer.clear_grad()
                self.step += 1
                bar.update(1)
                window.append({key: float(value) for key, value in terms.items()})
                if self.step % int(config["log_every"]) == 0 or self.step == total:
                    # the mean over the steps since the last record: steadier curves than one batch
                    record = {"step": self.step, "lr": lr,
                              **{key: float(np.mean([item[key] for item in window])) for key in window[0]}}
                    window = []
                    losses.append(record)
                    for key, value in record.items():
                        if key != "step":
                            writer.add_scalar(f"train/{key}", value, self.step)
                    bar.set_postfix(loss=f"{record['loss']:.3f}")
                every = int(config["eval"]["every_steps"])
                if self.val_annotations and every > 0 and self.step % every == 0 and self.step < total:
                    evaluations.append(self._evaluate(writer))
                if self.step % int(config["checkpoint_every_steps"]) == 0 or self.step == total:
                    saved = self.save(epoch)
            if saved is None:       # resumed at (or past) max_steps: nothing new to save
                saved = ckpt.latest_checkpoint(config["output"])
            final = None
            if self.val_annotations:
                final = self.evaluate()
                evaluations.append(self._log_report(writer, final))
                with atomic_write(os.path.join(config["output"], "eval.json"), "w") as handle:
                    json.dump(final.as_dict(), handle, indent=2)
        return TrainResult(config["output"], self.step, losses, evaluations, saved, final)

    # -------------------------------------------------------------------------------- eval, save
    def evaluate(self) -> DetectionReport:
        eval_config = self.config["eval"]
        detector = LayerDetector(self.model, score_threshold=eval_config["score_threshold"])
        return evaluate_on_annotations(detector.detect_batch, self.val_annotations, self.val_images,
                                       batch_size=int(eval_config["batch_size"]),
                                       iou_threshold=eval_config["iou_threshold"])

    def _evaluate(self, writer) -> dict:
        return self._log_report(writer, self.evaluate())

    def _log_report(self, writer, report: DetectionReport) -> dict:
        writer.add_scalar("val/ap", report.ap, self.step)
        for name, bucket in report.buckets.items():
            if not np.isnan(bucket.ap):
                writer.add_scalar(f"val/ap_{name}", bucket.ap, self.step)
        return {"step": self.step, **report.as_dict()}

    def save(self, epoch: int) -> str:
        meta = {"network": NETWORK_NAME, "variant": self.model.variant.name, "epoch": int(epoch),
                "input_size": self.model.variant.input_size, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        optimizer_state = ckpt.optimizer_state_by_structure(self.optimizer.state_dict(), self.model.named_parameters())
        return ckpt.save_checkpoint(self.config["output"], self.step, meta=meta,
                                    backbone_state=self.model.state_dict(), optimizer_state=optimizer_state,
                                    keep=int(self.config["keep_checkpoints"]))


def train_detector(config: dict, progress: bool = True) -> TrainResult:
    """Train a BlazeFace with a resolved config dict; returns losses, evaluations and the last checkpoint."""
    return DetectorTrainer(config, progress=progress).train()
