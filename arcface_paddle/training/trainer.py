"""Recognition training, top to bottom: data → backbone → PartialFC / triplet (+ center) → optimiser → loop.

``train(config)`` runs one process of a (possibly multi-process) run; ``config`` comes from
:func:`.config.load_config`.  Multi-process: ``train.py --nproc_per_node N ...`` (or ``python -m
paddle.distributed.launch --nproc_per_node N train.py ...``; gloo on CPU, NCCL on GPU).  On CPU each process
uses cores available / processes math threads (``cpu_threads``).  Each step:

1. this rank's slice of the global batch (deterministic in (seed, epoch); flips in (seed, epoch, batch));
2. embeddings = backbone(images) (under AMP fp16 on GPU when ``fp16``);
3. loss = PartialFC margin softmax (model-parallel, equal on every rank) or online-mined triplet loss on
   the gathered batch, plus ``center_loss_weight`` × center loss on the gathered batch;
4. backward; gradients of replicated parameters (backbone, centres) summed over ranks — which makes N
   processes with batch B step exactly like one process with batch N·B (with ``sync_bn`` for batch norm);
5. optional global-norm clipping; optimizer step at ``lr_at(step)``.

Checkpoints every ``checkpoint_every_steps``, at each epoch end and at the end; validation on the ``.bin``
targets every ``validation.every_steps`` and at the end (rank 0, through the inference predictor).  A start
is recorded in the run's config history and continues its VisualDL records (:mod:`.run_config`,
:mod:`.visualdl_records`).
"""
from __future__ import annotations

import dataclasses
import os
import signal
from typing import Dict, List, Optional

import numpy as np
import paddle
import paddle.distributed as dist

from arcface_paddle.core.checkpoint import latest_checkpoint, read_meta
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.lr_schedule import lr_at, schedule_from_config
from arcface_paddle.core.processes import die_with_parent, set_math_threads, threads_per_process
from arcface_paddle.losses.distributed import all_gather_rows, sum_gradient_rows, sum_gradients
from arcface_paddle.training.amp import make_grad_scaler
from arcface_paddle.training.components import Components, build_components
from arcface_paddle.training.data import build_train_data, flip_mask, load_validation_targets
from arcface_paddle.training.launcher import launch_logs_note, launched_by_paddle
from arcface_paddle.training.logger import TrainLogger
from arcface_paddle.training.optim import build_optimizer, clip_grad_norm
from arcface_paddle.training.resume import (
    TrainState,
    adopt_backbone_options,
    find_resume_checkpoint,
    load_pretrained_backbone,
    restore_training_state,
    save_training_state,
)
from arcface_paddle.training.run_config import (
    check_resume_config,
    checkpoint_in_run,
    record_start,
    run_records_files,
)
from arcface_paddle.training.shared_output import check_output_shared
from arcface_paddle.training.validation import evaluate_targets
from arcface_paddle.training.visualdl_records import continue_records


@dataclasses.dataclass
class TrainResult:
    output: str
    step: int
    epoch: int
    checkpoint: Optional[str]
    history: List[dict]                      # one entry per step: step, epoch, lr and the loss terms
    validation: Dict[str, List[dict]]        # target name → [{"step", accuracy, xnorm, tar_at_far ...}]
    rank: int = 0


def train(config: dict, *, allow_config_change: bool = False) -> TrainResult:
    """Train as ``config`` says (see config.DEFAULTS); returns what happened on this process.

    Resuming a checkpoint whose config differs from ``config`` in what is trained raises ToolkitError
    unless ``allow_config_change`` (:mod:`.run_config`)."""
    rank, world_size, on_gpu = _setup_process(config["device"])
    check_output_shared(config["output"], rank, world_size)     # multi-node: before any work, not at a checkpoint
    logger = TrainLogger(total_steps=0, num_epochs=int(np.ceil(config["num_epochs"])),
                         log_every=config["log_every"], rank=rank)
    threads = None if on_gpu else threads_per_process(int(config["cpu_threads"]))
    if threads is not None:
        set_math_threads(threads[0])
    if config["fp16"] and not on_gpu:
        logger.warning("fp16: AMP runs on GPU only; training in float32 on CPU")
    fp16 = bool(config["fp16"] and on_gpu)

    # --- data (every input problem is reported here, before any training)
    data = build_train_data(config, rank, world_size)
    targets = load_validation_targets(config) if rank == 0 else []
    global_batch = config["batch_size"] * world_size

    # --- model, losses, optimiser, lr schedule (same seed on every rank → identical initial weights)
    resume_from = find_resume_checkpoint(config)
    adopt_backbone_options(config, resume_from or config["pretrained"], log=logger.info)
    paddle.seed(int(config["seed"]))
    np.random.seed(int(config["seed"]) % (2 ** 32))
    parts = build_components(config, data.num_classes, world_size, on_gpu)
    optimizer = build_optimizer(config["optimizer"], [p for _, p in parts.named_parameters()], lr=config["lr"],
                                momentum=config["momentum"], weight_decay=config["weight_decay"],
                                betas=config["adam_betas"], epsilon=config["adam_epsilon"])
    scaler = make_grad_scaler(fp16)
    schedule = schedule_from_config(
        lr=config["lr"], global_batch=global_batch, reference_batch=config["lr_reference_batch"],
        steps_per_epoch=data.steps_per_epoch, num_epochs=config["num_epochs"],
        warmup_epochs=config["warmup_epochs"], schedule=config["lr_schedule"],
        decay_epochs=config["decay_epochs"], decay_rate=config["decay_rate"], min_lr=config["min_lr"])
    total_steps = schedule["total_steps"]
    stop_step = min(total_steps, config["max_steps"]) if config["max_steps"] > 0 else total_steps

    # --- where to start: a checkpoint of this run, pretrained weights, or scratch
    state = TrainState()
    changes = {}
    if resume_from:
        changes = check_resume_config(config, read_meta(resume_from), resume_from, global_batch=global_batch,
                                      allow_change=allow_config_change)
        state = restore_training_state(resume_from, config, parts, optimizer, num_classes=data.num_classes,
                                       global_batch=global_batch, rank=rank, world_size=world_size,
                                       scaler=scaler, log=logger.info)
        logger.info(f"resumed from {resume_from} at step {state.step} (epoch {state.epoch + 1})")
    elif config["resume"] == "auto":
        logger.info(f"resume: no checkpoint in {config['output']} yet, starting from scratch")
    else:
        _refuse_old_checkpoints(config["output"])
    if config["pretrained"] and not resume_from:
        load_pretrained_backbone(parts.backbone, config["pretrained"], network=config["network"],
                                 skip=tuple(config["pretrained_skip"]), log=logger.info)

    if rank == 0:
        logdir = config["logdir"] or os.path.join(config["output"], "vdl")
        records, carried = continue_records(logdir, state.step, run_records_files(config["output"]))
        history_file = record_start(config, step=state.step, world_size=world_size, resumed_from=resume_from,
                                    changes=changes, records_file=os.path.join(logdir, records))
        if changes:
            logger.info(f"config changed on resume: {', '.join(changes)} (recorded in {history_file})")
        logger = TrainLogger(total_steps=stop_step, num_epochs=logger.num_epochs, log_every=config["log_every"],
                             logdir=logdir, rank=rank, records_file=records)
        if carried:
            logger.info(f"VisualDL: {carried} points of steps 1-{state.step} carried into {records}")
    else:
        logger.total_steps = stop_step
    if launch_logs_note(config["output"]):
        logger.info(launch_logs_note(config["output"]))
    logger.info(f"{config['network']} {config['loss']}: {len(data.dataset)} images, {data.num_classes} classes, "
                f"{world_size} process(es) × batch {config['batch_size']} = {global_batch}, "
                f"{data.steps_per_epoch} steps/epoch, {total_steps} steps"
                + (f" (stopping at max_steps {stop_step})" if stop_step < total_steps else "")
                + f", lr {schedule['base_lr']:.4g} ({config['lr_schedule']}, warmup {schedule['warmup_steps']} steps)"
                + (f"; CPU threads {threads[0]} per process ({threads[1]})" if threads is not None else ""))

    history: List[dict] = []
    validation: Dict[str, List[dict]] = {}
    # A resume with nothing left to do must not re-save (and so rewrite) the checkpoint it resumed from.
    last_saved = state.step if resume_from and checkpoint_in_run(resume_from, config["output"]) else None
    last_checkpoint = resume_from
    parts.train()

    def save():
        nonlocal last_saved, last_checkpoint
        if last_saved != state.step:
            last_checkpoint = save_training_state(config, parts, optimizer, state, num_classes=data.num_classes,
                                                  global_batch=global_batch, rank=rank, world_size=world_size,
                                                  scaler=scaler)
            last_saved = state.step
            logger.info(f"saved checkpoint {last_checkpoint}")
            logger.flush()      # the curves up to a checkpoint survive a kill: a resume starts from there

    def validate():
        results = evaluate_targets(parts.backbone, targets, config, on_gpu=on_gpu,
                                   cpu_threads=threads[0] if threads else 1, log=logger.warning)
        if threads is not None:
            # Running a Paddle Inference predictor re-pins the process's math threads; left so, the eager
            # kernels after it sum in another order and the weights drift from a run without validation
            # (1e-6 after 3 steps, 1e-2 after 6 on an AVX-512 machine), so a validated run would not resume
            # bit-exact. Restoring the training setting keeps validation out of the weights.
            set_math_threads(threads[0])
        for name, result in results.items():
            logger.validation(name, result, state.step)
            validation.setdefault(name, []).append(dict(result.as_dict(), step=state.step))

    try:
        while state.step < stop_step:
            data.sampler.set_epoch(state.epoch, start_batch=state.batch_in_epoch)
            for images, labels, statuses in data.loader:
                data.guard.check(statuses.numpy())      # a bad sample: its own error now, not a hung loader
                lr = lr_at(state.step, **schedule)
                optimizer.set_lr(lr)
                if config["data"]["flip"]:
                    images = _flip(images, flip_mask(config["seed"], state.epoch, state.batch_in_epoch,
                                                     global_batch, rank, config["batch_size"]))
                paddle.seed(_step_seed(config["seed"], state.step, rank))
                if parts.head is not None:      # sampled classes: a function of (seed, step), not of the rank
                    parts.head.sampling_key = (int(config["seed"]), state.step)
                terms = train_step(parts, optimizer, images, labels, config=config, world_size=world_size,
                                   scaler=scaler)
                if not np.isfinite(terms["loss"]):
                    raise ToolkitError(f"loss became {terms['loss']} at step {state.step + 1} (lr {lr:.3g}): training "
                                       f"diverged; lower lr or set grad_clip_norm (last good checkpoint: "
                                       f"{last_checkpoint})")
                state.step += 1
                state.batch_in_epoch += 1
                history.append(dict(terms, step=state.step, epoch=state.epoch, lr=lr))
                logger.step(step=state.step, epoch=state.epoch, lr=lr, images=global_batch, values=terms)
                if config["checkpoint_every_steps"] > 0 and state.step % config["checkpoint_every_steps"] == 0:
                    save()
                    logger.reset_timer()
                every = config["validation"]["every_steps"]
                if targets and every > 0 and state.step % every == 0:
                    validate()
                    logger.reset_timer()
                if state.step >= stop_step:
                    break
            if state.batch_in_epoch >= data.steps_per_epoch:
                state.epoch, state.batch_in_epoch = state.epoch + 1, 0
                save()
        save()
        if targets and validation.get(targets[0].name, [{}])[-1].get("step") != state.step:
            validate()
    finally:
        logger.close()
    return TrainResult(config["output"], state.step, state.epoch, last_checkpoint, history, validation, rank)


def train_step(parts: Components, optimizer, images, labels, *, config: dict, world_size: int,
               scaler=None) -> Dict[str, float]:
    """One optimisation step; returns the loss terms (floats, equal on every rank)."""

    labels = labels.reshape([-1]).astype("int64")
    with paddle.amp.auto_cast(enable=scaler is not None):   # the run's one AMP switch (backbones/layers.py)
        embeddings = parts.backbone(images)
    embeddings = embeddings.astype("float32")
    terms: Dict[str, paddle.Tensor] = {}
    sharded_loss = paddle.zeros([], dtype="float32")       # equal on every rank, gradients split over ranks
    replicated_loss = paddle.zeros([], dtype="float32")    # computed in full by every rank on gathered data
    gathered = None
    if parts.triplet is not None or parts.center is not None:
        gathered = (all_gather_rows(embeddings), all_gather_rows(labels))
    if parts.head is not None:
        terms["softmax"] = parts.head(embeddings, labels)
        sharded_loss = terms["softmax"]
    if parts.triplet is not None:
        terms["triplet"] = parts.triplet(*gathered)
        replicated_loss = replicated_loss + terms["triplet"]
    if parts.center is not None:
        terms["center"] = parts.center(*gathered)
        replicated_loss = replicated_loss + float(config["center_loss_weight"]) * terms["center"]
    # Summing replicated gradients over ranks counts a replicated loss world_size times: divide it here.
    backward_loss = sharded_loss + replicated_loss / world_size
    if scaler is not None:
        scaler.scale(backward_loss).backward()
    else:
        backward_loss.backward()
    table = parts.trained_center_table()
    sum_gradients([p for p in parts.replicated_parameters() if p is not table])
    if table is not None:
        sum_gradient_rows(table, paddle.unique(gathered[1]))
    sparse = parts.head is not None and parts.head.sparse_update
    skipped = False
    if scaler is not None:   # unscale, and skip the step on every rank if any rank overflowed
        scaler.unscale_(optimizer, extra_grads=[parts.head.sparse_gradient()] if sparse else [])
        skipped = scaler.found_inf
    if config["grad_clip_norm"] > 0:
        clip_grad_norm(parts.replicated_parameters(), float(config["grad_clip_norm"]))
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    if sparse and not skipped:
        parts.head.step_centers(optimizer.get_lr(), momentum=float(config["momentum"]),
                                weight_decay=float(config["weight_decay"]))
    optimizer.clear_grad(set_to_zero=False)
    if parts.center is not None and parts.center.update == "mean":
        parts.center.update_centers(*parts.center.class_statistics(*gathered))
    values = {key: float(value.item()) for key, value in terms.items()}
    values["loss"] = values.get("softmax", 0.0) + values.get("triplet", 0.0) + \
        float(config["center_loss_weight"]) * values.get("center", 0.0)
    return values


def _flip(images, mask: np.ndarray):
    if not mask.any():
        return images
    condition = paddle.to_tensor(mask.reshape([-1, 1, 1, 1]))
    return paddle.where(condition, paddle.flip(images, axis=[3]), images)


def _step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(step), int(rank)]).generate_state(1)[0] % (2 ** 31 - 1))


def _setup_process(device: str):
    """Pick the device and join the process group when launched with several processes."""
    has_gpu = paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    if device == "gpu" and not has_gpu:
        raise ToolkitError("device gpu: this paddle build or machine has no GPU (use device=cpu)")
    on_gpu = has_gpu and device != "cpu"
    if on_gpu:
        selected = os.environ.get("FLAGS_selected_gpus", "0").split(",")[0]
        paddle.set_device(f"gpu:{int(selected)}")
    else:
        paddle.set_device("cpu")
    world = int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))
    if launched_by_paddle():
        die_with_parent(signal.SIGTERM)     # a killed launcher takes its ranks with it
    if world > 1 and not dist.is_initialized():
        dist.init_parallel_env()
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), on_gpu
    return 0, 1, on_gpu


def _refuse_old_checkpoints(output: str) -> None:
    existing = latest_checkpoint(output)
    if existing:
        raise ToolkitError(f"{output}: already holds checkpoints ({os.path.basename(existing)}); continue that run "
                           f"with --resume, or choose another --output")
