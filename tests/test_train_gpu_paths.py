"""The GPU-side training logic, checked on CPU wherever the logic allows (docs/gpu.md; the GPU itself:
benchmarks/gpu_check.sh): the AMP switch reaching the backbone, the loss-scaler state round trip, skip-step
agreed across ranks, row-wise center-loss communication, shared-output refusal, and memory at a million classes.

Paddle's GradScaler switches itself off on a CPU place; :func:`cpu_grad_scaler` lifts only that gate, so the
real scaler (scale, unscale, inf check, skip, update, state) runs here.

Run as a script (through paddle.distributed.launch, by the 2-process test) it is the worker:
``python tests/test_train_gpu_paths.py OUT_DIR``.
"""
import json
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.training.amp import RankSyncedGradScaler, load_scaler_state, scaler_state

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_CONFIG = os.path.join(REPO, "configs", "synthetic_tiny.yaml")


def cpu_grad_scaler(cls=RankSyncedGradScaler, **kwargs):
    """An enabled scaler on CPU (paddle's constructor disables it off-GPU; nothing else in it cares)."""
    import paddle.amp.grad_scaler as grad_scaler

    original = grad_scaler.in_dynamic_mode
    grad_scaler.in_dynamic_mode = lambda: False
    try:
        scaler = cls(**kwargs)
    finally:
        grad_scaler.in_dynamic_mode = original
    assert scaler.is_enable()
    with paddle.amp.auto_cast(enable=True):   # GradScaler.scale() refuses unless an fp16 autocast was opened
        pass
    return scaler


# ------------------------------------------------------------------------------------ loss-scaler state
class PerRankDecision(RankSyncedGradScaler):
    """Paddle's own skip decision (this rank's gradients only), for contrast."""

    def _unscale(self, optimizer, extra_grads=()):
        paddle.amp.GradScaler._unscale(self, optimizer)


def test_paddle_grad_scaler_update_crashes_on_overflow_and_ours_does_not():
    """Paddle 3.3.1's GradScaler logs every scale decrease with float() of a shape-[1] tensor: a TypeError under
    numpy >= 2.4, i.e. at the first fp16 overflow of a run.  If this starts passing, paddle fixed it."""
    plain = cpu_grad_scaler(paddle.amp.GradScaler, init_loss_scaling=1024.0)
    if tuple(int(v) for v in np.__version__.split(".")[:2]) >= (2, 4):
        with pytest.raises(TypeError, match="0-dimensional"):
            _overflowing_step(plain, inf=True)
    ours = cpu_grad_scaler(init_loss_scaling=1024.0)
    _overflowing_step(ours, inf=True)
    assert ours.loss_scale == 512.0


def _overflowing_step(scaler, inf: bool):
    layer = paddle.nn.Linear(2, 2)
    optimizer = paddle.optimizer.SGD(0.1, parameters=layer.parameters())
    loss = layer(paddle.ones([1, 2])).sum() * (float("inf") if inf else 1.0)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    scaler.step(optimizer)
    scaler.update()


def test_grad_scaler_state_round_trips_through_meta_json():
    scaler = cpu_grad_scaler(init_loss_scaling=1024.0, incr_every_n_steps=3)
    _overflowing_step(scaler, inf=True)          # halves the scale
    _overflowing_step(scaler, inf=False)         # one good step counted
    saved = json.loads(json.dumps(scaler_state(scaler)))      # what meta.json holds
    assert saved["scale"] == [512.0] and saved["incr_count"] == 1
    fresh = cpu_grad_scaler()
    with pytest.raises(TypeError):                # the old format (a bare float) crashed every fp16 --resume
        fresh.load_state_dict(dict(saved, scale=512.0))
    load_scaler_state(fresh, saved)
    restored, original = fresh.state_dict(), scaler.state_dict()
    assert restored.keys() == original.keys()
    for key in original:
        np.testing.assert_array_equal(restored[key], original[key], err_msg=key)
    older = cpu_grad_scaler()
    load_scaler_state(older, dict(saved, scale=512.0))        # checkpoints written before the fix load too
    assert older.loss_scale == 512.0


def _tiny_parts(*overrides, classes=8):
    from arcface_paddle.training.components import build_components
    from arcface_paddle.training.config import load_config
    from arcface_paddle.training.optim import build_optimizer

    config = load_config(TINY_CONFIG, overrides=["data.image_size=32", *overrides])
    paddle.seed(0)
    parts = build_components(config, classes, 1, False)
    optimizer = build_optimizer("sgd", [p for _, p in parts.named_parameters()], lr=0.1, momentum=0.9,
                                weight_decay=5e-4)
    rng = np.random.default_rng(0)
    images = paddle.to_tensor(rng.standard_normal((8, 3, 32, 32)).astype("float32"))
    labels = paddle.to_tensor(np.arange(8) % classes)
    return config, parts, optimizer, images, labels


def test_scaler_state_saved_and_restored_with_the_checkpoint(tmp_path):
    from arcface_paddle.training.resume import TrainState, restore_training_state, save_training_state

    config, parts, optimizer, _, _ = _tiny_parts(f"output={tmp_path}")
    scaler = cpu_grad_scaler(init_loss_scaling=1024.0)
    _overflowing_step(scaler, inf=True)
    folder = save_training_state(config, parts, optimizer, TrainState(0, 2, 2), num_classes=8, global_batch=8,
                                 rank=0, world_size=1, scaler=scaler)
    _, parts2, optimizer2, _, _ = _tiny_parts(f"output={tmp_path}")
    resumed = cpu_grad_scaler()
    restore_training_state(folder, config, parts2, optimizer2, num_classes=8, global_batch=8, rank=0, world_size=1,
                           scaler=resumed, log=lambda *_: None)
    assert resumed.loss_scale == 512.0


# ------------------------------------------------------------------------------------------ AMP step
def test_amp_train_step_casts_the_body_only_and_skips_overflowing_steps():
    """Through the trainer's own step: the autocast reaches the conv body, not the head or the loss; an overflow
    anywhere (here: the class centres' gradient) skips the whole step and halves the scale."""
    from paddle.amp.auto_cast import amp_state

    from arcface_paddle.training.trainer import train_step

    config, parts, optimizer, images, labels = _tiny_parts()
    requested = {}

    def record(part):
        def hook(layer, inputs):
            state = amp_state()
            requested[part] = "fp16" if state and state["enable"] else "fp32"
        return hook

    conv = next(layer for layer in parts.backbone.sublayers() if isinstance(layer, paddle.nn.Conv2D))
    for part, layer in (("stem conv", conv), ("head fc", parts.backbone.fc), ("PartialFC", parts.head)):
        layer.register_forward_pre_hook(record(part))
    scaler = cpu_grad_scaler(init_loss_scaling=1024.0)
    before = {name: p.numpy().copy() for name, p in parts.named_parameters()}
    train_step(parts, optimizer, images, labels, config=config, world_size=1, scaler=scaler)
    assert requested == {"stem conv": "fp16", "head fc": "fp32", "PartialFC": "fp32"}
    assert scaler.loss_scale == 1024.0 and not scaler.found_inf
    stepped = {name: p.numpy().copy() for name, p in parts.named_parameters()}
    assert all(not np.array_equal(stepped[name], before[name]) for name in ("head.weight", "backbone.fc.weight"))
    handle = parts.head.weight.register_hook(lambda grad: grad * float("inf"))
    train_step(parts, optimizer, images, labels, config=config, world_size=1, scaler=scaler)
    handle.remove()
    assert scaler.found_inf and scaler.loss_scale == 512.0
    for name, p in parts.named_parameters():
        np.testing.assert_array_equal(p.numpy(), stepped[name], err_msg=name)    # nothing moved


def test_amp_unscales_sparse_update_rows_too():
    """sparse_update's centre rows are not the optimizer's: the scaler unscales them as well, so an AMP step
    moves the centres exactly as the same step without loss scaling."""
    from arcface_paddle.training.trainer import train_step

    results = []
    for scaler in (None, cpu_grad_scaler(init_loss_scaling=1024.0)):
        config, parts, optimizer, images, labels = _tiny_parts("sparse_update=true")
        train_step(parts, optimizer, images, labels, config=config, world_size=1, scaler=scaler)
        results.append(parts.head.weight.numpy().copy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-5, atol=1e-7)
    start = _tiny_parts("sparse_update=true")[1].head.weight.numpy()
    assert np.abs(results[0] - start).max() > 1e-4


# ------------------------------------------------------------------------------------ sparse_update
def _train(tmp_path, name, *overrides):
    from arcface_paddle.training.config import load_config
    from arcface_paddle.training.trainer import train

    paddle.set_device("cpu")
    config = load_config(TINY_CONFIG, overrides=["batch_size=16", "max_steps=4", "checkpoint_every_steps=2",
                                                 "keep_checkpoints=0", "log_every=1", "sample_ratio=1.0",
                                                 f"output={tmp_path / name}", *overrides])
    return train(config)


def _final(result):
    from arcface_paddle.core import checkpoint as ckpt

    folder = os.path.join(result.output, "checkpoints", ckpt.step_dir_name(4))
    centres = ckpt.load_state(os.path.join(folder, ckpt.class_centers_file(0)))
    return centres, ckpt.load_state(os.path.join(folder, ckpt.BACKBONE_FILE))


def _assert_same_run(a, b):
    losses_b = {h["step"]: h["loss"] for h in b.history}
    np.testing.assert_allclose([h["loss"] for h in a.history], [losses_b[h["step"]] for h in a.history], rtol=1e-4)
    (centres_a, backbone_a), (centres_b, backbone_b) = _final(a), _final(b)
    np.testing.assert_allclose(centres_a["weight"], centres_b["weight"], rtol=1e-4, atol=1e-6)
    for name in backbone_a:
        np.testing.assert_allclose(backbone_a[name], backbone_b[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_sparse_update_from_config_trains_resumes_and_switches(tmp_path):
    """``-o sparse_update=true`` reaches PartialFC; at sample ratio 1 it trains exactly like the dense optimizer,
    and a run may switch it on or off when it resumes (the centres' momentum moves between the two homes)."""
    dense = _train(tmp_path, "dense")
    sparse = _train(tmp_path, "sparse", "sparse_update=true")
    _assert_same_run(sparse, dense)
    assert "momentum" in _final(sparse)[0]
    halfway = os.path.join(dense.output, "checkpoints", "step_000002")
    _assert_same_run(_train(tmp_path, "dense_to_sparse", "sparse_update=true", f"resume={halfway}"), dense)
    halfway = os.path.join(sparse.output, "checkpoints", "step_000002")
    _assert_same_run(_train(tmp_path, "sparse_to_dense", f"resume={halfway}"), dense)
    with pytest.raises(ToolkitError, match="sparse_update.*optimizer sgd"):
        _train(tmp_path, "adam", "sparse_update=true", "optimizer=adam")


# ------------------------------------------------------------------------------ memory, 1M classes
MEMORY_SCRIPT = r"""
import resource, sys
import numpy as np
import paddle
from arcface_paddle.losses.center import CenterLoss

paddle.seed(0)
loss = CenterLoss(1_000_000, 8, update="mean", alpha=0.5)
start = loss.centers.numpy()
with open("/proc/self/status") as status:
    vm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize"))
# 512 MiB more address space: the old path's 1024 x 1M one-hot (4 GB) cannot fit, the batch's rows can.
resource.setrlimit(resource.RLIMIT_AS, (vm + 2 ** 29, vm + 2 ** 29))
rng = np.random.default_rng(0)
labels = rng.integers(0, 1_000_000, 1024)
labels[:24] = labels[24:48]                   # some classes twice
features = rng.standard_normal((1024, 8)).astype("float32")
loss.update_centers(*loss.class_statistics(paddle.to_tensor(features), paddle.to_tensor(labels)))
np.savez(sys.argv[1], start=start[np.unique(labels)], after=loss.centers.numpy()[np.unique(labels)],
         untouched=float(np.abs(np.delete(loss.centers.numpy() - start, np.unique(labels), 0)).max()),
         labels=labels, features=features)
"""


def test_center_loss_mean_update_at_a_million_classes_touches_only_the_batch_rows(tmp_path):
    """The paper's update at 1M classes × batch 1024 under a 512 MiB address-space cap (the old one-hot needed
    4 GB), equal to a numpy reference on the batch's classes, every other centre bit-identical."""
    out = tmp_path / "update.npz"
    done = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(out)], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    result = np.load(out)
    assert float(result["untouched"]) == 0.0
    labels, unit = result["labels"], result["features"]
    unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
    classes = np.unique(labels)
    expected = result["start"].copy()
    for row, cls in enumerate(classes):
        mine = labels == cls
        expected[row] -= 0.5 * (result["start"][row] - unit[mine]).sum(axis=0) / (1 + mine.sum())
    np.testing.assert_allclose(result["after"], expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------- 2 processes
def test_two_gloo_ranks_agree_on_skips_and_refuse_unshared_outputs(tmp_path):
    """One launch, two CPU ranks: an overflow on one rank's centre shard skips the step on both (paddle's own
    scaler lets them disagree); center-loss gradients summed row-wise equal the full sum; an output folder the
    ranks do not share is refused at start, and a checkpoint into it is never published half-written."""
    command = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
               str(tmp_path / "log"), os.path.abspath(__file__), str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    log = (tmp_path / "log" / "workerlog.0").read_text() if (tmp_path / "log" / "workerlog.0").exists() else ""
    assert done.returncode == 0, (log + done.stderr)[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    synced = [r["synced"] for r in ranks]
    assert [s["stepped"] for s in synced] == [False, False] and [s["scale"] for s in synced] == [512.0, 512.0]
    plain = [r["paddle"] for r in ranks]
    assert [s["stepped"] for s in plain] == [True, False] and [s["scale"] for s in plain] == [1024.0, 512.0]
    for r in ranks:
        np.testing.assert_allclose(r["row_sum"], r["full_sum"], rtol=1e-6)
        assert r["untouched_rows_zero"]
        assert r["shared_check"] == "ok"
        assert "rank(s) 1 of 2 do not see rank 0's files" in r["unshared_check"]
        assert r["shared_save_files"] == ["backbone.pdparams", "class_centers_rank0.pdparams",
                                          "class_centers_rank1.pdparams", "meta.json"]
    assert "checkpoint not saved: rank 0 cannot see class_centers_rank1.pdparams" in ranks[0]["unshared_save"]
    assert ranks[1]["unshared_save"] == "no error"        # rank 0 stops the run; the launcher ends the others
    assert not (tmp_path / "node0" / "checkpoints" / "step_000001").exists()


def _worker(out_dir: str) -> None:
    import paddle.distributed as dist

    from arcface_paddle.core import checkpoint as ckpt
    from arcface_paddle.core.checkpoint import save_checkpoint
    from arcface_paddle.losses.distributed import sum_gradient_rows, sum_gradients
    from arcface_paddle.training.shared_output import check_output_shared

    paddle.set_device("cpu")
    ckpt.SHARED_FS_WAIT_S = 1.0             # how long rank 0 waits for an NFS cache (60 s in real runs)
    dist.init_parallel_env()
    rank, world = dist.get_rank(), dist.get_world_size()
    result = {}
    for kind, cls in (("synced", RankSyncedGradScaler), ("paddle", PerRankDecision)):
        paddle.seed(0)
        backbone = paddle.nn.Linear(4, 4)                                   # replicated
        shard = paddle.create_parameter([3, 4], "float32")                  # this rank's class centres
        optimizer = paddle.optimizer.Momentum(0.1, parameters=backbone.parameters() + [shard])
        scaler = cpu_grad_scaler(cls, init_loss_scaling=1024.0)
        if rank == 1:
            shard.register_hook(lambda grad: grad * float("inf"))
        before = shard.numpy().copy()
        scaler.scale(paddle.matmul(backbone(paddle.ones([2, 4])), shard, transpose_y=True).sum()).backward()
        sum_gradients(backbone.parameters())
        scaler.unscale_(optimizer)
        scaler.step(optimizer)
        scaler.update()
        result[kind] = {"stepped": not np.array_equal(shard.numpy(), before), "scale": float(scaler._scale.item())}
    labels = paddle.to_tensor([1, 3, 3, 4])                                 # the gathered batch: same everywhere
    sums = []
    for reduce in ("rows", "full"):
        table = paddle.create_parameter([6, 3], "float32", default_initializer=paddle.nn.initializer.Constant(1.0))
        weights = paddle.arange(12, dtype="float32").reshape([4, 3]) * (rank + 1)
        (paddle.gather(table, labels) * weights).sum().backward()
        sum_gradient_rows(table, paddle.unique(labels)) if reduce == "rows" else sum_gradients([table])
        sums.append(table.grad.numpy())
    result["row_sum"], result["full_sum"] = sums[0].tolist(), sums[1].tolist()
    result["untouched_rows_zero"] = bool(np.all(sums[0][[0, 2, 5]] == 0))
    check_output_shared(os.path.join(out_dir, "shared"), rank, world)
    result["shared_check"] = "ok"
    for key, action in (("unshared_check", lambda: check_output_shared(os.path.join(out_dir, f"node{rank}"), rank,
                                                                       world)),
                        ("unshared_save", lambda: save_checkpoint(os.path.join(out_dir, f"node{rank}"), 1, meta={},
                                                                  class_centers_state={"weight": np.ones((2, 2))},
                                                                  rank=rank, world_size=world, barrier=dist.barrier))):
        try:
            action()
            result[key] = "no error"
        except ToolkitError as error:
            result[key] = str(error)
    folder = save_checkpoint(os.path.join(out_dir, "shared"), 1, meta={}, backbone_state={"w": np.ones(2)},
                             class_centers_state={"weight": np.ones((2, 2))}, rank=rank, world_size=world,
                             barrier=dist.barrier)
    result["shared_save_files"] = sorted(os.listdir(folder))
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    _worker(sys.argv[1])
