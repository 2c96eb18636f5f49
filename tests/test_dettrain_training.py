"""Training for real: a from-scratch BlazeFace short-range learns to find synthetic faces on CPU.

One module-scoped run (configs/blazeface_synthetic.yaml): loss falls, AP on HELD-OUT scenes (other
people, other backgrounds) rises from ~0; checkpoints, VisualDL logs, resume and the eval CLI work.
"""
import json
import os

import numpy as np
import paddle
import pytest

from arcface_paddle.core.errors import ToolkitError
from blazeface_paddle.conversion.weights import load_detector
from blazeface_paddle.training.config import load_detector_config
from blazeface_paddle.training.trainer import DetectorTrainer


@pytest.fixture(scope="module")
def trained(repo_root, tmp_path_factory):
    paddle.set_device("cpu")
    output = tmp_path_factory.mktemp("blazeface_synthetic")
    config = load_detector_config(str(repo_root / "configs" / "blazeface_synthetic.yaml"),
                                  overrides=[f"output={output}"])
    trainer = DetectorTrainer(config, progress=False)
    before = trainer.evaluate()
    result = trainer.train()
    return config, before, result


# 40 steps from scratch land far from convergence, so the result varies a lot with the seed.  Measured over
# training seeds 0-9 (the config's is 0), same scenes: held-out AP 0.00 before, after 0.286-0.778 (medium
# faces 0.318-0.788); last/first loss window 0.35-0.63.  The AP bounds sit at about half the worst seed.
MIN_AP_GAIN = 0.15


def test_loss_falls(trained):
    _, _, result = trained
    losses = [record["loss"] for record in result.losses]
    assert result.steps == 40 and len(losses) == 4          # means over 10-step windows
    assert losses[-1] < 0.8 * losses[0], losses
    assert all(np.isfinite(losses))


def test_ap_on_held_out_scenes_rises(trained):
    _, before, result = trained
    after = result.final_report
    assert before.ap < 0.05                                 # the untrained network, same scenes
    assert after.ap > before.ap + MIN_AP_GAIN, after.table()
    assert after.overall.num_faces > 60                     # the held-out set is not trivially small
    assert after.buckets["medium"].ap > before.buckets["medium"].ap + MIN_AP_GAIN, after.table()


def test_checkpoints_logs_and_eval_json(trained):
    config, _, result = trained
    output = config["output"]
    assert result.checkpoint.endswith("step_000040")
    assert os.path.realpath(os.path.join(output, "latest")) == os.path.realpath(result.checkpoint)
    assert sorted(os.listdir(os.path.join(output, "checkpoints"))) == ["step_000020", "step_000040"]
    with open(os.path.join(result.checkpoint, "meta.json")) as handle:
        meta = json.load(handle)
    assert meta["network"] == "BlazeFace" and meta["variant"] == "short_range" and meta["step"] == 40
    assert any(name.startswith("vdlrecords") for name in os.listdir(os.path.join(output, "vdl")))
    with open(os.path.join(output, "eval.json")) as handle:
        assert json.load(handle)["ap"] == pytest.approx(result.final_report.ap)


def test_eval_cli_on_checkpoint_matches_trainer(trained, tmp_path):
    from arcface_paddle.cli import eval_detector

    config, _, result = trained
    out = tmp_path / "ap.json"
    assert eval_detector.main(["--model", config["output"], "--annotations", config["data"]["val"],
                               "--json", str(out)]) == 0
    assert json.loads(out.read_text())["ap"] == pytest.approx(result.final_report.ap, abs=1e-6)


def test_resume_continues_exactly(trained, tmp_path):
    """Steps 3-4 resumed from the step-2 checkpoint equal steps 3-4 of a run never interrupted."""
    config, _, _ = trained
    base = [f"data.train={config['data']['train']}", "data.synthetic.train_scenes=0",
            "data.synthetic.val_scenes=0", "data.val=null", "checkpoint_every_steps=2", "max_steps=4", "log_every=1"]
    straight = DetectorTrainer(load_detector_config(str(config_path(config)), base + [f"output={tmp_path / 'a'}"]),
                               progress=False).train()
    assert straight.checkpoint.endswith("step_000004")
    resumed_config = load_detector_config(str(config_path(config)), base + [
        f"output={tmp_path / 'b'}", f"resume={tmp_path / 'a' / 'checkpoints' / 'step_000002'}"])
    resumed_trainer = DetectorTrainer(resumed_config, progress=False)
    assert resumed_trainer.step == 2
    resumed = resumed_trainer.train()
    assert [r["step"] for r in resumed.losses] == [3, 4]
    np.testing.assert_allclose([r["loss"] for r in resumed.losses], [r["loss"] for r in straight.losses[2:]],
                               rtol=1e-4)
    a, b = load_detector(straight.checkpoint), load_detector(resumed.checkpoint)
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_allclose(pa.numpy(), pb.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_train_cli_with_overrides_and_export(trained, tmp_path, capsys):
    """The train-detector command: -o overrides, --pretrained from a checkpoint, --export to a model folder
    that the predictor runs with the same detections as the eager checkpoint."""
    from arcface_paddle.cli import train_detector
    from blazeface_paddle.inference.predictor import DetectorPredictor
    from blazeface_paddle.training.annotations import read_annotated_image, read_annotations
    from blazeface_paddle.training.evaluation import LayerDetector

    config, _, result = trained
    exported = tmp_path / "model"
    assert train_detector.main(["-c", str(config_path(config)), "--output", str(tmp_path / "run"),
                                "--pretrained", result.checkpoint, "--export", str(exported),
                                "-o", f"data.train={config['data']['train']}", "-o", "data.synthetic.train_scenes=0",
                                "-o", "data.synthetic.val_scenes=0", "-o", "max_steps=1", "-o", "lr=0"]) == 0
    assert "trained 1 steps" in capsys.readouterr().out
    eager = LayerDetector(load_detector(str(tmp_path / "run")), score_threshold=0.3)
    predictor = DetectorPredictor(str(exported), score_threshold=0.3)
    found = 0
    for item in read_annotations(config["data"]["val"])[:4]:
        image = read_annotated_image(config["data"]["val_images"], item.image_path)
        eager_boxes, eager_scores = eager.detect_batch([image])[0]
        faces = predictor.detect(image)
        assert len(faces) == len(eager_boxes)
        if faces:
            np.testing.assert_allclose([face.box for face in faces], eager_boxes, atol=0.5)
            np.testing.assert_allclose([face.score for face in faces], eager_scores, atol=2e-3)
        found += len(faces)
    assert found >= 2


def test_config_errors_are_one_line(repo_root, tmp_path):
    path = str(repo_root / "configs" / "blazeface_synthetic.yaml")
    with pytest.raises(ToolkitError, match="unknown config key 'augment.flip_prob'.*flip_probability"):
        load_detector_config(path, ["augment.flip_prob=0"])
    with pytest.raises(ToolkitError, match="config lr: expected a number"):
        load_detector_config(path, ["lr=fast"])
    assert load_detector_config(path, ["lr=1e-3"])["lr"] == 0.001          # YAML reads 1e-3 as text
    with pytest.raises(ToolkitError, match="matching.strategy: 'nearest' is not one of"):
        load_detector_config(path, ["matching.strategy=nearest"])
    with pytest.raises(ToolkitError, match="no training annotation file"):
        DetectorTrainer(load_detector_config(None, [f"output={tmp_path}"]), progress=False)
    with pytest.raises(ToolkitError, match="missing: checkpoint (file )?not found"):
        load_detector(str(tmp_path / "missing"), "short_range")


def config_path(config):
    return __import__("pathlib").Path(__file__).resolve().parent.parent / "configs" / "blazeface_synthetic.yaml"


def test_synthetic_scenes_are_reused_only_when_the_recipe_matches(trained, tmp_path):
    import copy

    from blazeface_paddle.training.trainer import prepare_synthetic_data

    config, _, _ = trained
    again = copy.deepcopy(config)
    label = again["data"]["val"]
    stamp = os.path.getmtime(label)
    prepare_synthetic_data(again)
    assert again["data"]["val"] == label and os.path.getmtime(label) == stamp        # reused as is
    changed = copy.deepcopy(config)
    changed["output"], synthetic = str(tmp_path), changed["data"]["synthetic"]
    synthetic.update(train_scenes=0, val_scenes=3, val_seed=5)
    prepare_synthetic_data(changed)
    first = open(changed["data"]["val"]).read()
    synthetic["val_seed"] = 6
    prepare_synthetic_data(changed)
    assert open(changed["data"]["val"]).read() != first                              # rewritten for the new seed


def test_mediapipe_weights_find_the_synthetic_faces(trained, repo_root):
    """The shipped MediaPipe short-range model scores high AP on the held-out scenes: the synthetic face
    boxes (built from keypoints) follow BlazeFace's own notion of a face box."""
    from blazeface_paddle.training.evaluation import evaluate_model

    config, _, _ = trained
    report = evaluate_model(str(repo_root / "inference_model" / "blazeface_short_range"), config["data"]["val"])
    assert report.ap > 0.85, report.table()
