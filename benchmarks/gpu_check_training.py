"""The training checks of gpu_check.py; each runs in its own child process and returns table rows.

They drive the toolkit's own code — ``train_step``/``train``, ``train.py`` under ``paddle.distributed.launch``,
the exporter — so what passes here is what a user runs.
"""
from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
from gpu_check import GOALS, REPO, row

CONFIG = os.path.join(REPO, "configs", "synthetic_tiny.yaml")
EMBEDDING = {"MobileFaceNet_128": 128, "iResNet50": 512}
WARMUP_STEPS = 8
LOSS_LINE = re.compile(r"step (\d+)/\d+ softmax (\S+)")


# ------------------------------------------------------------------------------------------- helpers
def _device(args) -> str:
    return getattr(args, "device", None) or "gpu"


def _sync(device: str) -> None:
    import paddle

    if device == "gpu":
        paddle.device.synchronize()


def _config(network: str | None, *overrides):
    from arcface_paddle.training.config import load_config

    full_size = [f"network={network}", "backbone_kwargs={}", f"embedding_size={EMBEDDING[network]}",
                 "data.image_size=112"] if network else []
    return load_config(CONFIG, overrides=[*full_size, *overrides])


def _step_parts(network: str, classes: int, batch: int, *, ratio: float, fp16: bool, device: str, sparse=False):
    """(config, components, optimizer, scaler, images, labels) for timing or inspecting ``train_step``."""
    import paddle

    from arcface_paddle.training.amp import make_grad_scaler
    from arcface_paddle.training.components import build_components
    from arcface_paddle.training.optim import build_optimizer

    paddle.set_device(device)
    config = _config(network, f"sample_ratio={ratio}", f"fp16={str(fp16).lower()}", f"batch_size={batch}",
                     f"sparse_update={str(sparse).lower()}")
    paddle.seed(0)
    parts = build_components(config, classes, 1, on_gpu=device == "gpu")
    optimizer = build_optimizer(config["optimizer"], [p for _, p in parts.named_parameters()], lr=0.1,
                                momentum=0.9, weight_decay=5e-4)
    parts.train()
    images = paddle.randn([batch, 3, 112, 112])
    labels = paddle.randint(0, classes, [batch], dtype="int64")
    return config, parts, optimizer, make_grad_scaler(fp16 and device == "gpu"), images, labels


def _launch(args, workdir: str, gpus: str, *train_args, timeout: float = 300):
    """``paddle.distributed.launch --gpus GPUS train.py ...``; returns (exit code, worker 0's log, seconds)."""
    os.makedirs(workdir, exist_ok=True)
    log_dir = os.path.join(workdir, "log")
    # CPU smoke runs of this script: as many gloo processes as GPUs named
    where = ["--gpus", gpus] if _device(args) == "gpu" else ["--nproc_per_node", str(len(gpus.split(",")))]
    command = [sys.executable, "-m", "paddle.distributed.launch", *where, "--log_dir", log_dir,
               os.path.join(REPO, "train.py"), "-c", CONFIG, *train_args]
    start = time.time()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=workdir)
    path = os.path.join(log_dir, "workerlog.0")
    log = open(path, errors="replace").read() if os.path.isfile(path) else done.stdout + done.stderr
    return done.returncode, log, time.time() - start


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:160] if lines else "no output"


def fp16_ops(folder: str, fmt: str) -> list:
    """What of fp16 an exported program holds: cast ops and half-precision tensors (empty: none)."""
    if fmt == "pir":
        text = open(os.path.join(folder, "inference.json")).read()
        ops = [op["#"] for op in json.loads(text)["program"]["regions"][0]["blocks"][0]["ops"]]
        return [op for op in ops if "cast" in op] + (["fp16 tensors"] if "t_f16" in text else [])
    from paddle.base.proto import framework_pb2

    program = framework_pb2.ProgramDesc()
    program.ParseFromString(open(os.path.join(folder, "inference.pdmodel"), "rb").read())
    block = program.blocks[0]
    half = [var.name for var in block.vars if var.type.HasField("dense_tensor")
            and var.type.dense_tensor.tensor.data_type == framework_pb2.VarType.FP16]
    return [op.type for op in block.ops if op.type == "cast"] + half[:3]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


# ------------------------------------------------------------------------------------------- checks
def train_throughput(args, workdir: str) -> list:
    import paddle

    from arcface_paddle.training.trainer import train_step

    device, rows = _device(args), []
    cases = [("MobileFaceNet_128", 100_000, False), ("iResNet50", 100_000, False),
             ("MobileFaceNet_128", 1_000_000, False), ("iResNet50", 1_000_000, False), ("iResNet50", 1_000_000, True)]
    for network, classes, sparse in cases:
        batch = args.batch_mobilefacenet if network.startswith("Mobile") else args.batch_iresnet
        config, parts, optimizer, scaler, images, labels = _step_parts(network, classes, batch, ratio=0.1,
                                                                      fp16=True, device=device, sparse=sparse)
        if device == "gpu":
            paddle.device.cuda.reset_max_memory_allocated()
        for _ in range(WARMUP_STEPS):
            train_step(parts, optimizer, images, labels, config=config, world_size=1, scaler=scaler)
        _sync(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            train_step(parts, optimizer, images, labels, config=config, world_size=1, scaler=scaler)
        _sync(device)
        rate = batch * args.steps / (time.perf_counter() - start)
        peak = paddle.device.cuda.max_memory_allocated() / 2 ** 30 if device == "gpu" else float("nan")
        goal = GOALS[network] if classes == 100_000 else None
        status = ("PASS" if rate >= goal else "FAIL") if goal else "INFO"
        rows.append(row("train_throughput", f"{network}, {classes:,} classes{', sparse_update' if sparse else ''}, "
                        f"batch {batch}", f"{rate:,.0f} img/s, peak {peak:.1f} GiB",
                        f"≥ {goal:,} img/s" if goal else "", status))
        del parts, optimizer, scaler, images, labels
        gc.collect()
        if device == "gpu":
            paddle.device.cuda.empty_cache()
    return rows


def amp_dtypes(args, workdir: str) -> list:
    import paddle

    from arcface_paddle.core.predictor import Predictor
    from arcface_paddle.inference.export import export_model, recognition_config
    from arcface_paddle.training.trainer import train_step

    device, rows = _device(args), []
    expected = {"stem conv": "float16", "last conv": "float16", "head FC": "float32", "head BN1d": "float32",
                "PartialFC input": "float32"}
    for network in EMBEDDING:
        config, parts, optimizer, scaler, images, labels = _step_parts(network, 1000, 16, ratio=1.0, fp16=True,
                                                                      device=device)
        seen = {}
        convs = [layer for layer in parts.backbone.sublayers() if isinstance(layer, paddle.nn.Conv2D)]
        for part, layer in (("stem conv", convs[0]), ("last conv", convs[-1]), ("head FC", parts.backbone.fc),
                            ("head BN1d", parts.backbone.features)):
            layer.register_forward_post_hook(lambda _, __, out, part=part: seen.__setitem__(part, out.dtype))
        parts.head.register_forward_pre_hook(lambda _, inputs: seen.__setitem__("PartialFC input", inputs[0].dtype))
        train_step(parts, optimizer, images, labels, config=config, world_size=1, scaler=scaler)
        got = {part: str(seen.get(part, "not run")).replace("paddle.", "") for part in expected}
        rows.append(row("amp_dtypes", f"{network} AMP step", ", ".join(f"{k} {v}" for k, v in got.items()),
                        "conv body fp16, head fp32", "PASS" if got == expected else "FAIL"))
        backbone = parts.backbone
        backbone.eval()
        x = paddle.randn([4, 3, 112, 112])
        with paddle.no_grad():
            eager = backbone(x).numpy()
        found, worst = [], 1.0
        for fmt in ("pir", "legacy"):
            folder = os.path.join(workdir, f"{network}_{fmt}")
            export_model(backbone, folder, recognition_config(network, embedding_size=EMBEDDING[network]), fmt=fmt)
            found += [f"{fmt}: {item}" for item in fp16_ops(folder, fmt)]
            out = Predictor(folder, use_gpu=device == "gpu").run(x.numpy())
            worst = min(worst, float(_cosines(out, eager).min()))
        rows.append(row("amp_dtypes", f"{network} export after AMP (pir, legacy)",
                        f"fp16 in programs: {', '.join(found) or 'none'}; predictor vs eager cosine ≥ {worst:.6f}",
                        "no fp16, cosine ≥ 0.9999", "PASS" if not found and worst >= 0.9999 else "FAIL"))
    return rows


def loss_parity(args, workdir: str) -> list:
    from arcface_paddle.training.trainer import train

    rows = []
    for network in EMBEDDING:
        losses = {}
        for fp16 in (False, True):
            config = _config(network, f"fp16={str(fp16).lower()}", f"device={_device(args)}", "max_steps=50",
                             "num_epochs=6", "batch_size=64", "lr=0.05", "lr_reference_batch=0", "warmup_epochs=0",
                             "lr_schedule=constant", "checkpoint_every_steps=0", "log_every=10",
                             "data.num_workers=4", f"output={os.path.join(workdir, network, str(fp16))}")
            losses[fp16] = np.array([entry["loss"] for entry in train(config).history])
        first = {fp16: float(values[:10].mean()) for fp16, values in losses.items()}
        last = {fp16: float(values[-10:].mean()) for fp16, values in losses.items()}
        gap = abs(last[True] - last[False]) / last[False]
        falling = all(last[k] < first[k] for k in last)
        rows.append(row("loss_parity", f"{network}, 50 steps × 64 synthetic faces",
                        f"mean loss steps 1–10 → 41–50: fp32 {first[False]:.3f} → {last[False]:.3f}, fp16 "
                        f"{first[True]:.3f} → {last[True]:.3f} (gap {gap:.1%}{'' if falling else ', NOT falling'})",
                        "gap ≤ 5 %", "PASS" if gap <= 0.05 else "FAIL"))
    return rows


def fp16_resume(args, workdir: str) -> list:
    from arcface_paddle.core import checkpoint as ckpt
    from arcface_paddle.training.config import load_config
    from arcface_paddle.training.trainer import train

    common = ["fp16=true", f"device={_device(args)}", "max_steps=8", "checkpoint_every_steps=4",
              "keep_checkpoints=0", "log_every=1", "batch_size=32", "num_epochs=2"]
    straight = train(load_config(CONFIG, overrides=common + [f"output={os.path.join(workdir, 'straight')}"]))
    halfway = os.path.join(straight.output, ckpt.CHECKPOINTS_DIR, ckpt.step_dir_name(4))
    resumed = train(load_config(CONFIG, overrides=common + [f"output={os.path.join(workdir, 'resumed')}",
                                                           f"resume={halfway}"]))
    scale = [ckpt.read_meta(os.path.join(run.output, ckpt.CHECKPOINTS_DIR, ckpt.step_dir_name(8))).get("amp_scaler")
             for run in (straight, resumed)]
    a = {entry["step"]: entry["loss"] for entry in straight.history}
    gap = max(abs(entry["loss"] - a[entry["step"]]) / abs(a[entry["step"]]) for entry in resumed.history)
    same_scale = scale[0] is not None and scale[0] == scale[1]
    return [row("fp16_resume", "AMP run: 8 steps vs 4 + resume + 4",
                f"resumed at step {resumed.history[0]['step'] - 1}; losses of steps 5–8 within {gap:.2e}; loss scale "
                f"{(scale[1] or {}).get('scale')} vs {(scale[0] or {}).get('scale')}", "gap ≤ 1e-2, same scale",
                "PASS" if gap <= 1e-2 and same_scale else "FAIL")]


def launch_1gpu(args, workdir: str) -> list:
    from arcface_paddle.core import checkpoint as ckpt

    output = os.path.join(workdir, "run")
    code, log, seconds = _launch(args, workdir, "0", "--output", output, "-o", f"device={_device(args)}", "-o",
                                 "fp16=true", "-o", "max_steps=20", "-o", "log_every=5", "-o",
                                 "checkpoint_every_steps=10", "-o", "keep_checkpoints=0")
    saved = os.path.isfile(os.path.join(output, ckpt.CHECKPOINTS_DIR, ckpt.step_dir_name(20), ckpt.META_FILE))
    return [row("launch_1gpu", "paddle.distributed.launch --gpus 0 train.py, fp16, 20 steps",
                f"exit {code} in {seconds:.0f} s, step-20 checkpoint {'saved' if saved else 'MISSING'}"
                + ("" if code == 0 and saved else f"; {_last_line(log)}"), "finishes",
                "PASS" if code == 0 and saved else "FAIL")]


def _losses(log: str) -> dict:
    return {int(step): float(value) for step, value in LOSS_LINE.findall(log)}


def _state(output: str, step: int):
    from arcface_paddle.core import checkpoint as ckpt

    folder = os.path.join(output, ckpt.CHECKPOINTS_DIR, ckpt.step_dir_name(step))
    world = int(ckpt.read_meta(folder)["world_size"])
    centres = np.concatenate([ckpt.load_state(os.path.join(folder, ckpt.class_centers_file(r)))["weight"]
                              for r in range(world)])
    return ckpt.load_state(os.path.join(folder, ckpt.BACKBONE_FILE)), centres


def _relative_gap(a: dict, b: dict, keys) -> float:
    """‖a − b‖ / ‖a‖ over the tensors ``keys`` taken together."""
    flat_a = np.concatenate([np.ravel(a[k]) for k in keys]).astype(np.float64)
    flat_b = np.concatenate([np.ravel(b[k]) for k in keys]).astype(np.float64)
    return float(np.linalg.norm(flat_a - flat_b) / max(np.linalg.norm(flat_a), 1e-12))


def multi_gpu(args, workdir: str) -> list:
    rows = []
    for ratio in (1.0, 0.5):
        runs = {}
        for gpus, batch in (("0", 16), ("0,1", 8)):
            folder = os.path.join(workdir, f"ratio{ratio}_{len(gpus.split(','))}gpu")
            code, log, _ = _launch(args, folder, gpus, "--output", os.path.join(folder, "run"), "--batch_size",
                                   str(batch), "-o", f"device={_device(args)}", "-o", "sync_bn=true", "-o",
                                   f"sample_ratio={ratio}", "-o", "max_steps=3", "-o", "checkpoint_every_steps=1",
                                   "-o", "keep_checkpoints=0", "-o", "log_every=1", "-o", "num_epochs=2")
            if code != 0:
                return rows + [row("multi_gpu", f"ratio {ratio}, GPUs {gpus}", f"exit {code}: {_last_line(log)}",
                                   status="FAIL")]
            runs[gpus] = (_losses(log), os.path.join(folder, "run"))
        (one_losses, one), (two_losses, two) = runs["0"], runs["0,1"]
        steps = (1, 2, 3) if ratio == 1.0 else (1,)
        loss_gap = max(abs(one_losses[s] - two_losses[s]) for s in steps)
        (a1, _), (b1, _) = _state(one, 1), _state(two, 1)
        bn = [key for key in a1 if key.endswith(("_mean", "_variance"))]
        bn_gap = _relative_gap(a1, b1, bn)
        if ratio == 1.0:
            (a3, centres_a), (b3, centres_b) = _state(one, 3), _state(two, 3)
            weights = [key for key in a3 if key not in bn]
            moved = {key: a3[key] - a1[key] for key in weights}
            drift = {key: b3[key] - b1[key] for key in weights}
            update_gap = _relative_gap(moved, drift, weights)
            centre_gap = float(np.abs(centres_a - centres_b).max() / np.abs(centres_a).max())
            ok = loss_gap <= 2e-3 and bn_gap <= 1e-3 and update_gap <= 1e-2 and centre_gap <= 1e-3
            result = (f"losses steps 1–3 within {loss_gap:.1e}, BN stats {bn_gap:.1e}, weight updates "
                      f"{update_gap:.1e}, centres {centre_gap:.1e}")
        else:   # each rank samples its own shard's negatives: after step 1 only BN statistics must agree
            ok = bn_gap <= 1e-3 and loss_gap <= 0.05 * abs(one_losses[1])
            result = f"BN stats after step 1 within {bn_gap:.1e}; first loss {two_losses[1]:.4f} vs {one_losses[1]:.4f}"
        rows.append(row("multi_gpu", f"2 GPUs × 8 (sync_bn) vs 1 GPU × 16, sample ratio {ratio}", result,
                        "equal to float noise", "PASS" if ok else "FAIL"))
    return rows
