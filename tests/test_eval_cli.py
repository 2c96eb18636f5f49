"""valid.py and export_inference_model.py end to end on a synthetic verification set and a tiny checkpoint."""
import importlib.util
import json
import os

import paddle
import pytest

from arcface_paddle.backbones import get_model
from arcface_paddle.core.checkpoint import save_checkpoint
from arcface_paddle.core.errors import ToolkitError, run_cli
from arcface_paddle.core.model_yaml import load_model_config
from arcface_paddle.core.program_export import file_digests
from arcface_paddle.data.synthetic import write_synthetic_verification_bin
from arcface_paddle.evaluation import evaluate_layer
from arcface_paddle.synthetic.faces import SyntheticFaces

SIZE = 56
TINY = dict(embedding_size=32, width_mult=0.25, input_size=SIZE, blocks=[1, 1, 1, 1, 1], feature_channels=64)


def _load_script(repo_root, name):
    spec = importlib.util.spec_from_file_location(name, repo_root / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def scripts(repo_root):
    return _load_script(repo_root, "valid"), _load_script(repo_root, "export_inference_model")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_cli")
    faces = SyntheticFaces(num_identities=10, images_per_identity=4, seed=0, image_size=SIZE)
    write_synthetic_verification_bin(faces, str(root / "data" / "lfw.bin"), identities=list(range(100, 110)), num_pairs=40)
    write_synthetic_verification_bin(faces, str(root / "data" / "agedb_30.bin"), identities=list(range(200, 212)), num_pairs=30)
    paddle.set_device("cpu")
    paddle.seed(0)
    model = get_model("MobileFaceNet_128", **TINY)
    model.eval()
    save_checkpoint(str(root / "train"), 20, meta={"network": "MobileFaceNet_128", "backbone_kwargs": TINY,
                                                    "embedding_size": 32, "epoch": 1},
                    backbone_state=model.state_dict())
    return root, model


def _run(main, argv, capsys):
    """Run a CLI main under run_cli; returns (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: main(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_valid_checkpoint_and_export_agree(workspace, scripts, capsys):
    root, model = workspace
    valid, export = scripts
    ckpt_out = root / "valid_ckpt"
    status, out, _ = _run(valid.main, ["--model", str(root / "train"), "--targets", "lfw,agedb_30", "--data_dir",
                                       str(root / "data"), "--batch_size", "16", "--output", str(ckpt_out),
                                       "--quiet"], capsys)
    assert status == 0
    assert "lfw" in out and "agedb_30" in out and "accuracy (%)" in out and "TAR@FAR=1e-03" in out
    report = json.loads((ckpt_out / "results.json").read_text())
    assert report["model"]["kind"] == "checkpoint" and report["model"]["step"] == 20
    assert report["targets"]["lfw"]["num_pairs"] == 40 and report["targets"]["agedb_30"]["num_pairs"] == 30
    for name in ("lfw", "agedb_30"):
        png = (ckpt_out / f"roc_{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

    # The numbers are exactly the library's protocol on the same images.
    from arcface_paddle.data.verification_bin import load_verification_bin
    images, issame = load_verification_bin(str(root / "data" / "lfw.bin"))
    direct = evaluate_layer(model, images, issame, batch_size=7)
    assert report["targets"]["lfw"]["accuracy"] == pytest.approx(direct.accuracy)
    assert report["targets"]["lfw"]["xnorm"] == pytest.approx(direct.xnorm, rel=1e-4)

    # Export the checkpoint, validate the exported model: same metrics through the predictor.
    status, out, _ = _run(export.main, ["--pretrained_model", str(root / "train"), "--output",
                                        str(root / "exported")], capsys)
    assert status == 0 and "model_id" in out
    status, _, _ = _run(valid.main, ["--model", str(root / "exported"), "--targets", "lfw,agedb_30", "--data_dir",
                                     str(root / "data"), "--output", str(root / "valid_exp"), "--quiet",
                                     "--no_plot"], capsys)
    assert status == 0
    exported = json.loads((root / "valid_exp" / "results.json").read_text())
    assert exported["model"]["kind"] == "inference" and exported["model"]["model_id"]
    # The checkpoint ran through the same program as its export: every number is identical, not just close.
    assert exported["targets"] == report["targets"]
    assert not (root / "valid_exp" / "roc_lfw.png").exists()


def test_thresholds_written_into_model_yaml_and_used_by_compare(workspace, scripts, capsys, faces_dir):
    root, _ = workspace
    valid, export = scripts
    model = root / "thresholded"
    status, _, _ = _run(export.main, ["--pretrained_model", str(root / "train"), "--output", str(model)], capsys)
    assert status == 0
    # Refused before any work: a checkpoint has no model.yaml, and the target must be one evaluated.
    status, _, err = _run(valid.main, ["--model", str(root / "train"), "--targets", "lfw", "--data_dir",
                                       str(root / "data"), "--write_thresholds", "lfw", "--quiet"], capsys)
    assert status == 2 and "export the checkpoint first" in err
    status, _, err = _run(valid.main, ["--model", str(model), "--targets", "lfw", "--data_dir", str(root / "data"),
                                       "--write_thresholds", "agedb_30", "--quiet"], capsys)
    assert status == 2 and "not among the targets" in err
    before = load_model_config(str(model))
    status, out, _ = _run(valid.main, ["--model", str(model), "--targets", "lfw,agedb_30", "--data_dir",
                                       str(root / "data"), "--write_thresholds", "lfw", "--fars", "1e-1,1e-2",
                                       "--output", str(root / "valid_thr"), "--quiet", "--no_plot"], capsys)
    assert status == 0 and "thresholds of lfw" in out
    result = json.loads((root / "valid_thr" / "results.json").read_text())["targets"]["lfw"]
    config = load_model_config(str(model))
    assert config.model_id == before.model_id and config.network == before.network     # the rest kept
    assert config.thresholds["target"] == "lfw" and config.thresholds["model_id"] == config.model_id
    assert config.thresholds["best_accuracy"] == pytest.approx(result["best_threshold"], abs=1e-6)
    assert list(config.thresholds["far"]) == ["1e-01"]            # 20 impostor pairs cannot measure 1e-2
    assert config.thresholds["far"]["1e-01"] >= result["threshold_at_far"]["1e-01"]
    assert list(result["tar_at_far"]) == ["1e-01", "1e-02"] and result["tar_at_far"]["1e-02"] is None

    # The pipeline and compare use the model's own threshold unless given one, and say which.
    from arcface_paddle.pipeline.analyzer import FaceAnalyzer

    analyzer = FaceAnalyzer(rec_model=str(model))
    assert analyzer.rec_thresh == config.thresholds["best_accuracy"]
    assert "best-accuracy threshold on lfw" in analyzer.rec_thresh_source
    from arcface_paddle.cli.compare import main as compare_main

    pair = [str(faces_dir / "obama.jpg"), str(faces_dir / "biden.jpg")]
    status, out, _ = _run(compare_main, [*pair, "--rec_model", str(model)], capsys)
    assert status == 0 and f"threshold {config.thresholds['best_accuracy']:.4f}: the model's best-accuracy" in out
    status, out, _ = _run(compare_main, [*pair, "--rec_model", str(model), "--threshold", "0.3"], capsys)
    assert status == 0 and "threshold 0.3000: given" in out
    status, out, _ = _run(compare_main, [*pair, "--rec_model", str(root / "exported")], capsys)
    assert status == 0 and "threshold 0.4000: default, measured for the shipped SFace model — NOT for this" in out
    status, out, _ = _run(compare_main, pair, capsys)              # the shipped SFace: its own default
    assert status == 0 and out.rstrip().endswith("threshold 0.4000: default, measured for the shipped SFace model")


@pytest.mark.parametrize("thresholds, message", [
    ({"far": {"1e-3": 0.4}}, "needs best_accuracy"),
    ({"best_accuracy": 1.5}, "best_accuracy must be a number in [-1, 1]"),
    ({"best_accuracy": 0.4, "far": {"2": 0.5}}, "not a false accept rate"),
    ({"best_accuracy": 0.4, "far": {"1e-3": "high"}}, "far[1e-3] must be a number"),
    ({"best_accuracy": 0.4, "model_id": "0123456789abcdef"}, "measured on model_id 0123456789abcdef"),
    ({"best_accuracy": 0.4, "colour": "red"}, "unknown key(s) in thresholds: colour"),
    (0.4, "thresholds must be a mapping"),
])
def test_model_yaml_thresholds_validated_on_load(workspace, scripts, capsys, tmp_path, thresholds, message):
    import shutil

    import yaml

    root, _ = workspace
    if not (root / "exported").exists():
        _, export = scripts
        assert _run(export.main, ["--pretrained_model", str(root / "train"), "--output", str(root / "exported")],
                    capsys)[0] == 0
    model = tmp_path / "model"
    shutil.copytree(root / "exported", model)
    raw = yaml.safe_load((model / "model.yaml").read_text())
    raw["thresholds"] = thresholds
    (model / "model.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ToolkitError) as error:
        load_model_config(str(model))
    assert message in str(error.value) and str(model / "model.yaml") in str(error.value)


def test_export_cli_reproducible_and_pdparams(workspace, scripts, capsys):
    root, _ = workspace
    _, export = scripts
    folders = []
    for i in range(2):
        folders.append(str(root / f"pir_{i}"))
        status, _, _ = _run(export.main, ["--pretrained_model", str(root / "train"), "--output", folders[-1],
                                          "--format", "pir"], capsys)
        assert status == 0
    assert file_digests(folders[0]) == file_digests(folders[1])
    assert sorted(os.listdir(folders[0])) == ["inference.json", "inference.pdiparams", "model.yaml"]
    # A bare .pdparams needs --network (and the tiny options cannot be given on the CLI → shape error).
    pdparams = str(root / "train" / "latest" / "backbone.pdparams")
    status, _, err = _run(export.main, ["--pretrained_model", pdparams, "--output", str(root / "x")], capsys)
    assert status == 2 and "--network" in err and len(err.strip().splitlines()) == 1
    status, _, err = _run(export.main, ["--pretrained_model", pdparams, "--network", "MobileFaceNet_128",
                                        "--output", str(root / "x")], capsys)
    assert status == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not (root / "x").exists()


@pytest.mark.parametrize("argv_tail, message", [
    (["--targets", "lfw,cfp_fp"], "cfp_fp.bin: verification file not found"),
    (["--targets", "lfw", "--batch_size", "0"], "batch size must be >= 1"),
    (["--targets", "lfw,lfw"], "listed twice"),
])
def test_valid_bad_input_exit_2(workspace, scripts, capsys, argv_tail, message):
    root, _ = workspace
    valid, _ = scripts
    status, _, err = _run(valid.main, ["--model", str(root / "train"), "--data_dir", str(root / "data"),
                                       "--output", str(root / "never"), "--quiet", *argv_tail], capsys)
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (root / "never").exists()


def test_valid_missing_model_and_corrupt_bin(workspace, scripts, capsys, tmp_path):
    root, _ = workspace
    valid, _ = scripts
    status, _, err = _run(valid.main, ["--model", str(tmp_path / "nope"), "--data_dir", str(root / "data"),
                                       "--targets", "lfw", "--quiet"], capsys)
    assert status == 2 and "nope: model not found" in err
    (tmp_path / "bad.bin").write_bytes(b"\x80\x04not a pickle")
    status, _, err = _run(valid.main, ["--model", str(root / "train"), "--data_dir", str(tmp_path),
                                       "--targets", "bad", "--quiet", "--output", str(tmp_path / "o")], capsys)
    assert status == 2 and "bad.bin" in err and len(err.strip().splitlines()) == 1


def test_valid_folder_with_program_but_no_model_yaml(workspace, scripts, capsys, tmp_path):
    root, _ = workspace
    valid, _ = scripts
    (tmp_path / "inference.pdmodel").write_bytes(b"")
    (tmp_path / "inference.pdiparams").write_bytes(b"")
    status, _, err = _run(valid.main, ["--model", str(tmp_path), "--data_dir", str(root / "data"),
                                       "--targets", "lfw", "--quiet"], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "model.yaml: missing beside inference.pdmodel" in err


def test_valid_subprocess_error_is_one_line_without_paddle_thread_warning(repo_root, tmp_path):
    """A user's run: --threads 2 sets OMP_NUM_THREADS, which makes paddle print a data-parallel warning at
    import unless valid.py filters it; an error is then the only line on stderr."""
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    (tmp_path / "lfw.bin").write_bytes(b"")     # found, so the model is what fails
    done = subprocess.run([sys.executable, str(repo_root / "valid.py"), "--model", str(tmp_path / "nope"),
                           "--data_dir", str(tmp_path), "--targets", "lfw", "--threads", "2"],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope'}: model not found (a checkpoint "
                                                f"folder, .pdparams file or exported model)"], done.stderr
