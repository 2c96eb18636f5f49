"""A training run a user can trust: resume keeps the run's config, curves survive resumes and kills, workers die
with the trainer, the console says what it does — through train.py's own ``main`` on a tiny synthetic run."""
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from arcface_paddle.cli.train import main as train_main
from arcface_paddle.core import checkpoint as ckpt
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.processes import processes_on_this_machine, threads_per_process
from arcface_paddle.data.synthetic import write_synthetic_verification_bin
from arcface_paddle.synthetic.faces import SyntheticFaces
from arcface_paddle.training.config import DEFAULTS

OPTIONS = ["max_steps=9", "checkpoint_every_steps=3", "log_every=3", "validation.every_steps=3", "num_epochs=3",
           "keep_checkpoints=0"]


def _tiny(repo_root):
    return str(repo_root / "configs" / "synthetic_tiny.yaml")


def _overrides(items):
    return sum((["-o", item] for item in items), [])


def _points(logdir, tag):
    """(step, value) of ``tag`` as VisualDL's board reads it: its LogReader on the folder (newest file)."""
    from visualdl import LogReader

    reader = LogReader(logdir=str(logdir))
    run = next(iter(reader.logs()))
    return [(int(item[0]), float(item[3])) for item in reader.get_log_data("scalar", run, tag.replace("/", "%"))]


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs_val") / "heldout.bin"
    write_synthetic_verification_bin(SyntheticFaces(1, 1, seed=0, image_size=32), str(path), range(1000, 1030), 200)
    return path


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def test_resume_keeps_the_runs_config_and_curves(repo_root, tmp_path, heldout, capsys):
    from visualdl import LogWriter

    run = tmp_path / "run"
    options = OPTIONS + [f"validation.targets=[{heldout}]"]
    foreign = LogWriter(logdir=str(run / "vdl"), file_name="vdlrecords.0000000001.log")   # another run's curves
    foreign.add_scalar(tag="other/loss", value=1.0, step=5)
    foreign.close()
    assert train_main(["-c", _tiny(repo_root), "--output", str(run), *_overrides(options)]) == 0
    out = capsys.readouterr().out
    assert "stopping at max_steps 9" in out and "step 9/9" in out and "eta 0:00:00" in out
    assert re.search(r"CPU threads \d+ per process \(\d+ cores / 1 process\)", out)
    assert re.search(r"TAR@FAR 1e-02 [0-9.]+ 1e-03 - 1e-04 -", out)     # 100 impostor pairs measure 1e-2 only
    assert os.path.realpath(run / "latest") == os.path.realpath(run / "checkpoints" / "step_000009")
    # A kill after step 9 was logged but before its checkpoint was complete: the run resumes from step 6.
    ckpt_9 = run / "checkpoints" / "step_000009"
    for name in os.listdir(ckpt_9):
        os.unlink(ckpt_9 / name)
    os.rmdir(ckpt_9)
    assert train_main(["--output", str(run), "--resume"]) == 0         # no -c: the run's own config
    out = capsys.readouterr().out
    assert "at step 6" in out and "step 9/9" in out
    for tag in ("train/loss", "train/lr", "val/heldout/accuracy", "val/heldout/tar@far=1e-02"):
        assert [step for step, _ in _points(run / "vdl", tag)] == [3, 6, 9], tag     # once each, none lost
    assert sorted(name for name in os.listdir(run / "vdl") if "vdlrecords" in name)[0] == "vdlrecords.0000000001.log"
    assert len([name for name in os.listdir(run / "vdl") if "vdlrecords" in name]) == 2      # ours + the foreign
    assert _points(run / "vdl", "other/loss") == []                                     # not carried into ours

    # Nothing left to do: nothing is rewritten.
    meta, config_yaml = _read(ckpt_9 / "meta.json"), _read(run / "config.yaml")
    assert train_main(["--output", str(run), "--resume"]) == 0
    assert _read(ckpt_9 / "meta.json") == meta and _read(run / "config.yaml") == config_yaml
    # The recipe file without the run's overrides would change the run: refused, naming the keys.
    with pytest.raises(ToolkitError) as refused:
        train_main(["-c", _tiny(repo_root), "--output", str(run), "--resume"])
    message = str(refused.value)
    for key in ("max_steps 9 → 0", "num_epochs 3 → 4", "validation.targets", "--allow-config-change"):
        assert key in message
    assert "checkpoint_every_steps" not in message                       # says where/how often, not what
    assert _read(ckpt_9 / "meta.json") == meta and _read(run / "config.yaml") == config_yaml

    # An explicit change is made, and recorded; the original stays on record.
    assert train_main(["--output", str(run), "--resume", "-o", "max_steps=12", "--allow-config-change"]) == 0
    assert "step 12/12" in capsys.readouterr().out
    with open(run / "config_history.yaml", encoding="utf-8") as handle:
        history = yaml.safe_load(handle)
    assert [entry["step"] for entry in history] == [0, 6, 9, 9]
    assert history[0]["config"]["max_steps"] == 9 and history[0]["resumed_from"] is None
    assert history[-1]["changes"] == {"max_steps": {"from": 9, "to": 12}}
    assert all("changes" not in entry for entry in history[1:3])
    with open(run / "config.yaml", encoding="utf-8") as handle:
        assert yaml.safe_load(handle)["max_steps"] == 12
    assert _read(ckpt_9 / "meta.json") == meta
    assert [step for step, _ in _points(run / "vdl", "train/loss")] == [3, 6, 9, 12]
    assert [step for step, _ in _points(run / "vdl", "val/heldout/accuracy")] == [3, 6, 9, 12]
    assert (run / "vdl" / "vdlrecords.0000000001.log").exists()                         # never removed

    # The same steps without validation, uninterrupted: validating (through the predictor) and resuming changed
    # nothing in the weights.
    plain = tmp_path / "plain"
    assert train_main(["-c", _tiny(repo_root), "--output", str(plain), *_overrides(OPTIONS)]) == 0
    a = ckpt.load_state(str(ckpt_9 / ckpt.BACKBONE_FILE))
    b = ckpt.load_state(str(plain / "checkpoints" / "step_000009" / ckpt.BACKBONE_FILE))
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-7, err_msg=name)


def test_resume_without_a_run_is_one_clear_error(tmp_path):
    with pytest.raises(ToolkitError, match="no run to resume here"):
        train_main(["--output", str(tmp_path / "nothing"), "--resume"])
    with pytest.raises(ToolkitError, match="--output RUN"):
        train_main(["--resume"])


def test_help_examples_name_the_real_latest_path(repo_root, capsys):
    expected = f"{DEFAULTS['output']}/latest"          # train.py writes OUTPUT/latest (checked above)
    for name in ("valid", "export_inference_model"):
        result = subprocess.run([sys.executable, str(repo_root / f"{name}.py"), "--help"], capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0 and expected in result.stdout, name
        assert "checkpoints/latest" not in result.stdout


def test_threads_per_process_from_cores_and_processes(monkeypatch):
    for name in ("PADDLE_LOCAL_SIZE", "PADDLE_TRAINERS_NUM", "PADDLE_NNODES"):
        monkeypatch.delenv(name, raising=False)
    cores = len(os.sched_getaffinity(0))
    assert processes_on_this_machine() == 1
    assert threads_per_process(0)[0] == cores
    assert threads_per_process(3) == (3, "cpu_threads")
    monkeypatch.setenv("PADDLE_TRAINERS_NUM", "8")
    monkeypatch.setenv("PADDLE_NNODES", "2")
    assert processes_on_this_machine() == 4                            # 8 ranks on 2 machines
    monkeypatch.setenv("PADDLE_LOCAL_SIZE", "2")
    assert processes_on_this_machine() == 2
    threads, why = threads_per_process(0)
    assert threads == max(1, cores // 2) and why == f"{cores} cores / 2 processes"


def _children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_kill_9_of_the_trainer_takes_its_dataloader_workers(repo_root, tmp_path):
    process = subprocess.Popen([sys.executable, str(repo_root / "train.py"), "-c", _tiny(repo_root), "--output",
                                str(tmp_path / "run"), "-o", "data.num_workers=2", "-o", "num_epochs=500",
                                "-o", "log_every=1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.time() + 120
        for line in process.stdout:                   # the first step: the workers are serving batches
            if re.search(r"step 1/\d+", line) or time.time() > deadline:
                break
        workers = _children(process.pid)
        assert len(workers) == 2, "expected 2 DataLoader workers"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    deadline = time.time() + 30
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.1)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:                                  # never leave them running, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left, "DataLoader workers outlived the killed trainer"
