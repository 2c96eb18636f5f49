"""Hostile-input matrix, training and model surfaces: `train`, `valid`, `export`, `train-detector`,
`eval-detector`, `import-pretrained`.

Each row: the bad input, the exit status, the one-line message, what must be unchanged / absent on disk.
Rows that train run a few steps of the tiny synthetic config (32 px MobileFaceNet) until the bad sample.
"""
import os

import hostile_world
import pytest
from hostile_inputs import Row, check_row, read_only_folder, table


@pytest.fixture(scope="module")
def world(tmp_path_factory, faces_dir, repo_root):
    root = str(tmp_path_factory.mktemp("hostile_training"))
    found = {"out": os.path.join(root, "out"), "ro": os.path.join(root, "read_only"),
             "sface": str(repo_root / "inference_model" / "mobilenet_sface"),
             "short_range": str(repo_root / "inference_model" / "blazeface_short_range")}
    found.update(hostile_world.images(os.path.join(root, "images"), faces_dir))
    found.update(hostile_world.shard_sets(os.path.join(root, "shards")))
    found.update(hostile_world.pickles(os.path.join(root, "pickles")))
    found.update(hostile_world.recognition_models(os.path.join(root, "models"), repo_root))
    found.update(hostile_world.checkpoints(os.path.join(root, "checkpoints")))
    found.update(hostile_world.configs(os.path.join(root, "configs"), repo_root))
    found.update(hostile_world.detection_sets(os.path.join(root, "detection"), faces_dir))
    for name in ("t_nan", "t_ro", "v_amp", "e_file"):
        found[name] = os.path.join(found["out"], name)
    return found


TINY = "-c {config_tiny} --output {out}/t"
SHARDS = "-c {config_tiny} -o data.kind=shards -o batch_size=2 -o data.num_workers=0"
TRAIN = table(
    # --- a bad sample met during training: its own one-line error at once, never a hung loader (FAIL before)
    Row("truncated-shard-0-workers", SHARDS + " -o data.root={ds_truncated} --output {out}/tr0", 2,
        r"ds_truncated/images/00000003\.bin: truncated shard", unchanged="ds_truncated"),
    Row("truncated-shard-2-workers", "-c {config_tiny} -o data.kind=shards -o batch_size=2 -o data.num_workers=2 "
        "-o data.root={ds_truncated} --output {out}/tr2", 2, r"00000003\.bin: truncated shard", subprocess=True),
    Row("pickle-payload-shard", SHARDS + " -o data.root={ds_payload} --output {out}/pay", 2,
        r"00000003\.bin: unsafe or corrupt pickle \(refusing to load global os\.system\)"),
    Row("traversal-key-shard", SHARDS + " -o data.root={ds_traversal} --output {out}/trav", 2,
        r"00000003\.bin: refusing unsafe key '\.\./\.\./\.\./evil\.png'"),
    Row("bomb-image-in-shard", SHARDS + " -o data.root={ds_bomb} --output {out}/bomb", 2,
        r"00000003\.bin: image declares 100000×100000 pixels"),
    # --- NaN, negative sizes, bad labels and files: one line before any work (FAIL before)
    Row("num-epochs-nan", TINY + " -o num_epochs=nan", 2, r"config num_epochs: expected a finite number, found nan"),
    Row("num-identities-negative", TINY + " -o data.synthetic.num_identities=-5", 2,
        r"config data\.synthetic\.num_identities: must be positive, found -5"),
    Row("lr-infinite", TINY + " -o lr=.inf", 2, r"config lr: expected a finite number, found inf"),
    Row("margin-nan", TINY + " -o margin.s=nan", 2, r"config margin\.s: expected a finite number"),
    Row("nan-inside-config-file", "-c {config_nan} --output {out}/t", 2, r"config num_epochs: expected a finite"),
    Row("config-not-utf8", "-c {config_latin1}", 2, r"latin1\.yaml: config file is not UTF-8 text"),
    Row("label-1e23", SHARDS + " -o data.root={ds_label_huge}", 2,
        r"label\.txt:2: label 100000000000000000000000 is larger than 2147483647"),
    Row("label-outside-dataset", SHARDS + " -o data.root={ds_label_outside}", 2,
        r"refusing entry '\.\./ds/images/00000001\.bin'"),
    Row("label-file-not-utf8", SHARDS + " -o data.root={ds_label_latin1}", 2, r"label\.txt:2: label file is not UTF-8 text \(byte 0xe9\)"),
    Row("sparse-labels", SHARDS + " -o data.root={ds_sparse} --output {out}/sparse", 2,
        r"labels go up to 2000000000 but only 2 identities are present"),
    Row("output-is-a-file", "-c {config_tiny} --output {blocker}", 2, r"a_file: output folder is not writable"),
    Row("batch-size-negative", TINY + " --batch_size -2", 2, r"--batch_size -2: must not be negative"),
    Row("image-size-huge", TINY + " -o data.image_size=100000", 2,
        r"config data\.image_size: must be at most 1,024, found 100000"),
    Row("synthetic-identities-huge", TINY + " -o data.synthetic.num_identities=1000000000", 2,
        r"data\.synthetic\.num_identities: must be at most 10,000,000"),
    Row("resume-meta-not-utf8", TINY + " --resume {ckpt_latin1}", 2, r"meta\.json: checkpoint meta\.json is not UTF-8"),
    # --- already refused before issue 13
    Row("unknown-key", TINY + " -o nm_epochs=3", 2, r"unknown config key 'nm_epochs'; did you mean num_epochs"),
    Row("missing-config", "-c {missing}", 2, r"missing\.jpg: config file not found"),
    Row("data-root-missing", SHARDS + " -o data.root={missing}", 2, r"training data folder not found"),
    Row("batch-size-zero", TINY + " --batch_size 0", 2, r"config batch_size: must be positive"),
    Row("pretrained-payload", TINY + " --pretrained {ckpt_payload}", 2, r"refusing to load global os\.system"),
)


@pytest.mark.parametrize("row", TRAIN)
def test_train(row, world):
    check_row("train", row, world)


VALID = "--targets lfw --quiet --output {out}/v"
VALIDATE = table(
    Row("memo-amplified-lfw", "--model {sface} --data_dir {lfw_amplified_dir} " + VALID, 2,
        r"lfw\.bin: refusing a pickle that expands far beyond", absent="v_amp"),
    Row("params-bit-flipped", "--model {rec_bitflip} --data_dir {lfw_payload_dir} " + VALID, 2,
        r"does not match model\.yaml"),
    Row("model-yaml-std-zero", "--model {rec_std0} --data_dir {lfw_payload_dir} " + VALID, 2,
        r"std must be positive numbers"),
    Row("output-is-a-file", "--model {sface} --data_dir {lfw_payload_dir} --targets lfw --output {blocker}", 2,
        r"a_file: output folder is not writable"),
    Row("batch-negative", "--model {sface} --data_dir {lfw_payload_dir} --batch_size -1 " + VALID, 2,
        r"--batch_size -1: must not be negative"),
    Row("code-payload-lfw", "--model {sface} --data_dir {lfw_payload_dir} " + VALID, 2,
        r"lfw\.bin: unsafe or corrupt pickle \(refusing to load global os\.system\)"),
    Row("truncated-lfw", "--model {sface} --data_dir {lfw_truncated_dir} " + VALID, 2, r"lfw\.bin: corrupt pickle"),
    Row("missing-target", "--model {sface} --data_dir {lfw_payload_dir} --targets cfp_fp --output {out}/v", 2,
        r"cfp_fp\.bin: verification file not found"),
    Row("threads-zero", "--model {sface} --data_dir {lfw_payload_dir} --threads 0 " + VALID, 2,
        r"--threads must be >= 1"),
)


@pytest.mark.parametrize("row", VALIDATE)
def test_valid(row, world):
    check_row("valid", row, world)


EXPORT = table(
    Row("meta-not-utf8", "--pretrained_model {ckpt_latin1} --output {out}/e", 2,
        r"ckpt_latin1/meta\.json: checkpoint meta\.json is not UTF-8"),
    Row("output-is-a-file", "--pretrained_model {ckpt_payload} --output {blocker}", 2,
        r"a_file: exists and is not a folder", unchanged="blocker"),
    Row("pickle-payload-weights", "--pretrained_model {ckpt_payload} --output {out}/e", 2,
        r"backbone\.pdparams: unsafe or corrupt pickle \(refusing to load global os\.system\)"),
    Row("missing-checkpoint", "--pretrained_model {missing} --output {out}/e", 2, r"checkpoint not found"),
)


@pytest.mark.parametrize("row", EXPORT)
def test_export(row, world):
    check_row("export", row, world)


def test_read_only_outputs(world):
    with read_only_folder(world["ro"]):
        for command, row in (
                ("export", Row("export", "--pretrained_model {ckpt_payload} --output {ro}/model", 2,
                               r"read_only: output folder is not writable")),
                ("train", Row("train", "-c {config_tiny} --output {ro}/run", 2,
                              r"read_only/run: output folder is not writable")),
                ("valid", Row("valid", "--model {sface} --data_dir {lfw_payload_dir} --targets lfw --output {ro}/v",
                              2, r"read_only/v: output folder is not writable"))):
            check_row(command, row, world)


DETECTOR = "-c {config_detector} -o batch_size=2 -o max_steps=4 -o data.num_workers=0"
TRAIN_DETECTOR = table(
    Row("unreadable-image-0-workers", DETECTOR + " -o data.train={det_unreadable} --output {out}/d0", 2,
        r"images/b\.jpg: not a readable image"),
    Row("unreadable-image-2-workers", "-c {config_detector} -o batch_size=2 -o max_steps=4 -o data.num_workers=2 "
        "-o data.train={det_unreadable} --output {out}/d2", 2, r"images/b\.jpg: not a readable image", subprocess=True),
    Row("bomb-image", DETECTOR + " -o data.train={det_bomb} --output {out}/db", 2, r"images/c\.png: image declares"),
    Row("lr-nan", DETECTOR + " -o lr=nan -o data.train={det_bomb}", 2, r"config lr: expected a finite number"),
    Row("checkpoint-every-zero", DETECTOR + " -o checkpoint_every_steps=0", 2,
        r"config checkpoint_every_steps: must be positive"),
    Row("output-is-a-file", DETECTOR + " -o data.train={det_bomb} --output {blocker}", 2,
        r"output folder is not writable"),
    Row("annotations-not-utf8", DETECTOR + " -o data.train={nonutf8} --output {out}/dl", 2,
        r"latin1\.txt: not a text annotation file \(not UTF-8\)"),
    Row("unknown-key", DETECTOR + " -o max_step=3", 2, r"unknown config key 'max_step'"),
)


@pytest.mark.parametrize("row", TRAIN_DETECTOR)
def test_train_detector(row, world):
    check_row("train-detector", row, world)


EVAL_DETECTOR = table(
    Row("json-is-a-folder", "--model {short_range} --annotations {det_bomb} --json {out}", 2,
        r"out: --json file is a folder"),
    Row("json-is-the-annotations", "--model {short_range} --annotations {det_bomb} --json {det_bomb}", 2,
        r"label\.txt: this output would overwrite the input", unchanged="det_bomb"),
    Row("score-threshold-nan", "--model {short_range} --annotations {det_bomb} --score-threshold nan", 2,
        r"--score-threshold nan: expected a finite number"),
    Row("missing-annotations", "--model {short_range} --annotations {missing}", 2, r"annotation file not found"),
)


@pytest.mark.parametrize("row", EVAL_DETECTOR)
def test_eval_detector(row, world):
    os.makedirs(world["out"], exist_ok=True)
    check_row("eval-detector", row, world)


IMPORT_PRETRAINED = table(
    Row("output-is-a-file", "--source {blocker} --network MobileNetV1 --output {blocker}", 2,
        r"a_file: exists and is not a folder"),
    Row("missing-source", "--source {missing} --network MobileNetV1 --output {out}/imp", 2, r"weights file not found"),
    Row("unsupported-format", "--source {nonutf8} --network MobileNetV1 --output {out}/imp", 2,
        r"unsupported weights format \.txt"),
)


@pytest.mark.parametrize("row", IMPORT_PRETRAINED)
def test_import_pretrained(row, world):
    check_row("import-pretrained", row, world)
