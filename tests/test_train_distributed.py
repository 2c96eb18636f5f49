"""Multi-process and resume behaviour, against one uninterrupted single-process reference run.

* 2 gloo processes × batch 8 (sync_bn) step exactly like 1 process × batch 16 (sample_ratio 1.0);
* SIGKILL after a checkpoint, then ``--resume``, reaches the reference's final weights;
* a 2-process checkpoint resumes on 1 process (class centres and their optimizer state re-split).
"""
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest

from arcface_paddle.core import checkpoint as ckpt
from arcface_paddle.training.config import load_config
from arcface_paddle.training.trainer import train

STEPS = 12
COMMON = ["max_steps=%d" % STEPS, "checkpoint_every_steps=3", "keep_checkpoints=0", "sync_bn=true",
          "log_every=1", "num_epochs=2"]


def _config_path(repo_root):
    return str(repo_root / "configs" / "synthetic_tiny.yaml")


@pytest.fixture(scope="module")
def reference(repo_root, tmp_path_factory):
    paddle.set_device("cpu")
    output = tmp_path_factory.mktemp("reference")
    config = load_config(_config_path(repo_root), overrides=COMMON + ["batch_size=16", f"output={output}"])
    return train(config)


def _step_dir(output, step):
    return os.path.join(str(output), "checkpoints", ckpt.step_dir_name(step))


def _centres(folder):
    world = ckpt.read_meta(folder)["world_size"]
    return np.concatenate([ckpt.load_state(os.path.join(folder, ckpt.class_centers_file(r)))["weight"]
                           for r in range(world)])


def _assert_same_model(folder_a, folder_b, tolerance):
    a = ckpt.load_state(os.path.join(folder_a, ckpt.BACKBONE_FILE))
    b = ckpt.load_state(os.path.join(folder_b, ckpt.BACKBONE_FILE))
    assert a.keys() == b.keys()
    for name in a:
        scale = max(float(np.abs(a[name]).max()), 1e-3)
        assert float(np.abs(a[name] - b[name]).max()) <= tolerance * scale, name
    centres_a, centres_b = _centres(folder_a), _centres(folder_b)
    assert float(np.abs(centres_a - centres_b).max()) <= tolerance * float(np.abs(centres_a).max())


def _initial_weights(repo_root):
    from arcface_paddle.training.components import build_backbone

    config = load_config(_config_path(repo_root))   # the triplet config shares this backbone and seed
    paddle.seed(config["seed"])          # the trainer initialises from exactly this seed
    backbone, _ = build_backbone(config)
    return {name: value.numpy() for name, value in backbone.state_dict().items()}


def _assert_same_updates(repo_root, folder_a, folder_b, tolerance, centres=True):
    """The weight changes since initialisation agree to ``tolerance`` (relative, whole backbone)."""
    start = _initial_weights(repo_root)
    a = ckpt.load_state(os.path.join(folder_a, ckpt.BACKBONE_FILE))
    b = ckpt.load_state(os.path.join(folder_b, ckpt.BACKBONE_FILE))
    assert a.keys() == b.keys() == start.keys()
    delta_a = np.concatenate([(a[k] - start[k]).ravel() for k in sorted(a)])
    delta_b = np.concatenate([(b[k] - start[k]).ravel() for k in sorted(a)])
    assert np.linalg.norm(delta_a) > 0.1
    assert np.linalg.norm(delta_a - delta_b) <= tolerance * np.linalg.norm(delta_a)
    if not centres:
        return
    centres_a, centres_b = _centres(folder_a), _centres(folder_b)
    assert np.abs(centres_a - centres_b).max() <= tolerance * np.abs(centres_a).max()


def _train_cmd(repo_root, output, *extra):
    return [str(repo_root / "train.py"), "-c", _config_path(repo_root), "--output", str(output),
            *sum((["-o", item] for item in COMMON), []), *extra]


def test_two_gloo_processes_equal_one_process(repo_root, tmp_path, reference):
    # Early training of this tiny net is chaotic (even the thread count's rounding grows ~10× per step after
    # a few steps), so runs are compared over the first steps, where float rounding cannot hide a real bug.
    output = tmp_path / "two"
    command = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
               "--log_dir", str(tmp_path / "log"), *_train_cmd(repo_root, output, "--batch_size", "8",
                                                               "-o", "max_steps=3", "-o", "checkpoint_every_steps=1")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=str(tmp_path))
    log = (tmp_path / "log" / "workerlog.0").read_text()
    assert result.returncode == 0, log[-2000:]
    assert "2 process(es) × batch 8 = 16" in log
    losses = [float(v) for v in re.findall(r"step \d+/\d+ softmax (\S+)", log)]
    expected = [entry["softmax"] for entry in reference.history[:3]]
    assert len(losses) == 3
    np.testing.assert_allclose(losses, expected, atol=2e-3)
    assert ckpt.read_meta(_step_dir(output, 3))["world_size"] == 2
    _assert_same_updates(repo_root, _step_dir(output, 3), _step_dir(reference.output, 3), tolerance=1e-3)
    # A 2-process checkpoint resumes on 1 process: centres (and momentum) re-split, same step as the reference.
    paddle.set_device("cpu")
    config = load_config(_config_path(repo_root), overrides=COMMON + [
        "batch_size=16", "max_steps=3", f"output={tmp_path / 'one'}", f"resume={_step_dir(output, 2)}"])
    resumed = train(config)
    assert resumed.step == 3
    _assert_same_updates(repo_root, _step_dir(tmp_path / "one", 3), _step_dir(reference.output, 3), tolerance=1e-3)


def test_sigkill_then_resume_matches_uninterrupted(repo_root, tmp_path):
    # The uninterrupted run is a fresh process like the killed one: an in-process reference would inherit
    # whatever thread settings earlier tests left in pytest's process, and this tiny net's early training
    # turns a different thread count's rounding into visibly different weights within a few steps.
    uninterrupted = tmp_path / "uninterrupted"
    result = subprocess.run([sys.executable, *_train_cmd(repo_root, uninterrupted, "--batch_size", "16")],
                            capture_output=True, text=True, timeout=180, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    output = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, *_train_cmd(repo_root, output, "--batch_size", "16")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(tmp_path))
    marker = os.path.join(_step_dir(output, 6), ckpt.META_FILE)
    deadline = time.time() + 180
    while not os.path.exists(marker) and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "training finished before it could be killed"
    killed_at = ckpt.read_meta(ckpt.latest_checkpoint(str(output)))["step"]
    assert 6 <= killed_at < STEPS
    result = subprocess.run([sys.executable, *_train_cmd(repo_root, output, "--batch_size", "16", "--resume")],
                            capture_output=True, text=True, timeout=180, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"at step {killed_at}" in result.stdout
    _assert_same_model(_step_dir(output, STEPS), _step_dir(uninterrupted, STEPS), tolerance=1e-5)
    a = ckpt.load_state(os.path.join(_step_dir(output, STEPS), ckpt.optimizer_file(0)))
    b = ckpt.load_state(os.path.join(_step_dir(uninterrupted, STEPS), ckpt.optimizer_file(0)))
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-6)


def test_two_processes_triplet_and_center_equal_one_process(repo_root, tmp_path):
    """Replicated losses (triplet mined over the gathered P×K batch, center loss with gradient-trained centres)
    give the same steps on 2 processes as on 1."""
    # SGD here: Adam divides by the root of tiny second moments, which turns float rounding into lr-sized steps.
    options = ["max_steps=3", "log_every=1", "sync_bn=true", "center_loss_weight=0.1", "checkpoint_every_steps=0",
               "optimizer=sgd", "lr=0.05"]
    paddle.set_device("cpu")
    triplet_config = str(repo_root / "configs" / "synthetic_triplet.yaml")
    single = train(load_config(triplet_config, overrides=options + ["batch_size=16", f"output={tmp_path / 'one'}"]))
    command = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
               str(tmp_path / "log"), str(repo_root / "train.py"), "-c", triplet_config, "--output",
               str(tmp_path / "two"), "--batch_size", "8", *sum((["-o", item] for item in options), [])]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=str(tmp_path))
    log = (tmp_path / "log" / "workerlog.0").read_text()
    assert result.returncode == 0, log[-2000:]
    found = re.findall(r"step \d+/\d+ triplet (\S+) center (\S+)", log)
    assert len(found) == 3
    np.testing.assert_allclose([[float(a), float(b)] for a, b in found],
                               [[entry["triplet"], entry["center"]] for entry in single.history], atol=2e-4)
    two = os.path.join(str(tmp_path / "two"), "latest")
    one = os.path.join(str(tmp_path / "one"), "latest")
    _assert_same_updates(repo_root, two, one, tolerance=1e-3, centres=False)
    np.testing.assert_allclose(ckpt.load_state(os.path.join(two, "center_loss.pdparams"))["centers"],
                               ckpt.load_state(os.path.join(one, "center_loss.pdparams"))["centers"], atol=1e-5)
