"""PartialFC: shards, sampling, and equality with a plain full softmax — single process and 2 gloo processes.

Run as a script (by the 2-process test, through paddle.distributed.launch) it is the worker:
``python tests/test_models_partial_fc.py OUT_DIR``.
"""
import os
import subprocess
import sys

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.losses import CombinedMarginLoss, PartialFC, margin_softmax_loss
from arcface_paddle.losses.distributed import reshard_rows, shard_range, sum_gradients
from arcface_paddle.losses.partial_fc import (
    class_draws,
    init_centers,
    negative_keep_rate,
    parallel_softmax_cross_entropy,
    sample_classes,
)

paddle.set_device("cpu")

DIM, CLASSES, BATCH = 16, 37, 8
RANK_ROWS = [slice(0, 5), slice(5, 8)]  # unequal batches per rank exercise the gather padding
MARGIN = (1.0, 0.5, 0.0)
SAMPLING_KEY = (2024, 7)      # what the trainer passes: (seed, step)


def problem():
    """Global batch; the labels repeat classes and span both shards."""
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((BATCH, DIM)).astype("float32")
    labels = np.array([3, 30, 3, 18, 19, 36, 0, 25])
    return embeddings, labels


def run_partial_fc(embeddings, labels, sample_ratio, seed=0, key=None):
    paddle.seed(seed)
    x = paddle.to_tensor(embeddings, stop_gradient=False)
    head = PartialFC(DIM, CLASSES, sample_ratio=sample_ratio, margin_loss=MARGIN)
    head.sampling_key = key
    loss = head(x, paddle.to_tensor(labels))
    loss.backward()
    index = head.sampled_index.numpy() if head.sampled_index is not None else np.arange(head.num_local)
    return dict(loss=loss.item(), grad=x.grad.numpy(), weight=head.weight.numpy(), wgrad=head.weight.grad.numpy(),
                index=index, start=head.class_start)


def run_with_backbone(inputs, labels):
    """A linear 'backbone' under PartialFC; its gradient summed over ranks (a no-op in one process)."""
    start = np.random.default_rng(1).standard_normal((inputs.shape[1], DIM)).astype("float32")
    projection = paddle.create_parameter([inputs.shape[1], DIM], "float32",
                                         default_initializer=paddle.nn.initializer.Assign(start))
    head = PartialFC(DIM, CLASSES, margin_loss=MARGIN)
    loss = head(paddle.matmul(paddle.to_tensor(inputs), projection), paddle.to_tensor(labels))
    loss.backward()
    sum_gradients([projection])
    return projection.grad.numpy()


def reference(embeddings, labels, centers):
    """Plain full softmax with the same margin over ``centers`` (paddle autograd, no sharding/sampling)."""
    x = paddle.to_tensor(embeddings, stop_gradient=False)
    w = paddle.to_tensor(centers, stop_gradient=False)
    cosine = paddle.matmul(F.normalize(x, axis=1), F.normalize(w, axis=1), transpose_y=True)
    loss = margin_softmax_loss(cosine, paddle.to_tensor(labels), CombinedMarginLoss(64.0, *MARGIN))
    loss.backward()
    return loss.item(), x.grad.numpy(), w.grad.numpy()


def numpy_loss(embeddings, labels, centers, s=64.0, m=0.5):
    x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    w = centers / np.linalg.norm(centers, axis=1, keepdims=True)
    cos = (x.astype(np.float64) @ w.T.astype(np.float64)).clip(-1, 1)
    rows = np.arange(len(labels))
    theta = np.arccos(cos[rows, labels])
    logits = s * cos
    logits[rows, labels] = s * np.where(theta <= np.pi - m, np.cos(theta + m), np.cos(theta) - 1 - np.cos(np.pi - m))
    shifted = logits - logits.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[rows, labels]))


def test_shard_range_covers_all_classes_contiguously():
    for classes, world in [(37, 2), (10, 3), (5, 5), (1000, 8)]:
        shards = [shard_range(classes, r, world) for r in range(world)]
        assert shards[0][0] == 0 and sum(c for _, c in shards) == classes
        assert all(s + c == shards[i + 1][0] for i, (s, c) in enumerate(shards[:-1]))
        assert max(c for _, c in shards) - min(c for _, c in shards) <= 1
    assert shard_range(37, 1, 2) == (19, 18)


def test_initial_centres_do_not_depend_on_the_world_size():
    full = init_centers(0, 10000, 4, seed=3)
    parts = [init_centers(*shard_range(10000, r, 3), 4, seed=3) for r in range(3)]
    np.testing.assert_array_equal(np.concatenate(parts), full)
    assert 0.009 < full.std() < 0.011
    head = PartialFC(4, 300000, init_seed=3)  # filled in several blocks
    np.testing.assert_array_equal(head.weight.numpy(), init_centers(0, 300000, 4, seed=3))


def test_full_ratio_equals_plain_softmax_in_loss_and_gradients():
    embeddings, labels = problem()
    out = run_partial_fc(embeddings, labels, 1.0)
    loss, grad, wgrad = reference(embeddings, labels, out["weight"])
    assert out["loss"] == pytest.approx(loss, rel=1e-6)
    assert out["loss"] == pytest.approx(numpy_loss(embeddings, labels, out["weight"]), rel=1e-5)
    np.testing.assert_allclose(out["grad"], grad, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["wgrad"], wgrad, rtol=1e-4, atol=1e-6)


def test_sampling_keeps_positives_and_only_sampled_centres_get_gradient():
    embeddings, labels = problem()
    out = run_partial_fc(embeddings, labels, 0.3)
    index = out["index"]
    assert len(set(index)) == len(index) and (np.diff(index) > 0).all()
    assert set(labels) <= set(index)
    unsampled = np.setdiff1d(np.arange(CLASSES), index)
    assert np.abs(out["wgrad"][unsampled]).max() == 0.0
    assert (np.abs(out["wgrad"][labels]).sum(axis=1) > 0).all()
    # Equals a full softmax over just the sampled centres.
    remapped = np.searchsorted(index, labels)
    loss, grad, wgrad = reference(embeddings, remapped, out["weight"][index])
    assert out["loss"] == pytest.approx(loss, rel=1e-6)
    np.testing.assert_allclose(out["grad"], grad, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["wgrad"][index], wgrad, rtol=1e-4, atol=1e-6)


def test_sampling_keeps_every_positive_even_beyond_the_ratio_and_follows_the_seed():
    embeddings, labels = problem()
    out = run_partial_fc(embeddings, labels, 0.05)  # 1 sample requested, 7 distinct positives
    np.testing.assert_array_equal(out["index"], np.unique(labels))
    a = run_partial_fc(embeddings, labels, 0.5, seed=4)["index"]
    b = run_partial_fc(embeddings, labels, 0.5, seed=4)["index"]
    c = run_partial_fc(embeddings, labels, 0.5, seed=5)["index"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_sampled_classes_do_not_depend_on_the_split_and_average_the_ratio():
    key, ratio = (3, 17), 0.3
    whole = class_draws(key, 0, 1000)
    for world in (2, 3, 7):
        parts = [class_draws(key, *shard_range(1000, r, world)) for r in range(world)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert not np.array_equal(class_draws((3, 18), 0, 1000), whole)
    # Positives always kept; negatives at the rate that makes ratio × classes on average (binomial spread).
    rate = negative_keep_rate(1000, int(ratio * 1000), num_positive=50)
    counts = [50 + np.sum(class_draws((3, step), 0, 1000)[50:] < rate) for step in range(200)]
    assert abs(np.mean(counts) - 300) < 3 * np.sqrt(950 * rate * (1 - rate) / 200)
    assert negative_keep_rate(1000, 40, num_positive=60) == 0.0


def test_a_shard_with_nothing_sampled_adds_nothing_to_the_softmax():
    labels = paddle.to_tensor(np.array([-1, -1, -1], dtype="int64"))     # no positive in this shard
    index, remapped, empty = sample_classes(labels, np.full(5, 0.9), keep_rate=0.1)
    assert empty and index.numpy().tolist() == [0] and remapped.numpy().tolist() == [-1, -1, -1]
    # The placeholder column, masked to -1e30, leaves the loss and the other columns' gradient unchanged.
    rng = np.random.default_rng(0)
    real = rng.standard_normal((3, 4)).astype("float32")
    targets = np.array([1, 0, 3])
    a = paddle.to_tensor(real, stop_gradient=False)
    b = paddle.to_tensor(np.concatenate([real, np.zeros((3, 1), "float32")], axis=1), stop_gradient=False)
    loss_a = parallel_softmax_cross_entropy(a, paddle.to_tensor(targets))
    loss_b = parallel_softmax_cross_entropy(b - paddle.to_tensor([0, 0, 0, 0, 1e30], dtype="float32"),
                                            paddle.to_tensor(targets))
    loss_a.backward()
    loss_b.backward()
    assert loss_b.item() == pytest.approx(loss_a.item(), rel=1e-7)
    np.testing.assert_allclose(b.grad.numpy()[:, :4], a.grad.numpy(), rtol=1e-6)
    assert np.abs(b.grad.numpy()[:, 4]).max() < 1e-30


def test_state_dict_reshard_and_input_errors():
    head = PartialFC(DIM, CLASSES)
    assert list(head.state_dict()) == ["weight"] and head.state_dict()["weight"].shape == [CLASSES, DIM]
    shards = [np.full((c, DIM), r, "float32") for r, (_, c) in enumerate(shard_range(CLASSES, r, 3) for r in range(3))]
    head.load_center_shards(shards)
    np.testing.assert_array_equal(head.weight.numpy(), np.concatenate(shards))
    two = [reshard_rows(shards, r, 2, CLASSES) for r in range(2)]
    assert [len(t) for t in two] == [19, 18]
    np.testing.assert_array_equal(np.concatenate(two), np.concatenate(shards))
    with pytest.raises(ToolkitError, match="do not split 37 classes"):
        head.load_center_shards(shards[:2])
    with pytest.raises(ToolkitError, match="the head's are 16"):
        head.load_center_shards([s[:, :8] for s in shards])
    with pytest.raises(ToolkitError, match=r"label 37 outside \[0, 37\)"):
        head(paddle.randn([2, DIM]), paddle.to_tensor([0, 37]))
    with pytest.raises(ToolkitError, match="expected embeddings N×16"):
        head(paddle.randn([2, 8]), paddle.to_tensor([0, 1]))
    with pytest.raises(ToolkitError, match="sample_ratio"):
        PartialFC(DIM, CLASSES, sample_ratio=0.0)


def train_centres(sample_ratio, sparse, steps=2, lr=0.5, momentum=0.9, weight_decay=0.05):
    """Weights (and momentum) after ``steps`` updates of the centres, dense optimizer vs step_centers."""
    embeddings, labels = problem()
    paddle.seed(0)
    head = PartialFC(DIM, CLASSES, sample_ratio=sample_ratio, margin_loss=MARGIN, sparse_update=sparse)
    opt = None if sparse else paddle.optimizer.Momentum(lr, momentum=momentum, weight_decay=weight_decay,
                                                        parameters=head.parameters())
    before, sampled = head.weight.numpy(), []
    for step in range(steps):
        head(paddle.to_tensor(embeddings + step), paddle.to_tensor(labels)).backward()
        sampled.append(head.sampled_index.numpy() if head.sampled_index is not None else np.arange(CLASSES))
        if sparse:
            assert head.weight.grad is None  # no dense centre gradient
            head.step_centers(lr, momentum=momentum, weight_decay=weight_decay)
        else:
            opt.step()
            opt.clear_grad()
    momentum_state = head.momentum.numpy() if sparse else None
    return before, head.weight.numpy(), momentum_state, sampled


def test_sparse_update_equals_paddle_momentum_at_full_ratio():
    _, dense, _, _ = train_centres(1.0, sparse=False)
    _, sparse, _, _ = train_centres(1.0, sparse=True)
    np.testing.assert_allclose(sparse, dense, rtol=1e-5, atol=1e-7)


def test_sparse_update_leaves_unsampled_centres_and_momentum_untouched():
    before, after, momentum, sampled = train_centres(0.3, sparse=True, steps=1)
    untouched = np.setdiff1d(np.arange(CLASSES), sampled[0])
    np.testing.assert_array_equal(after[untouched], before[untouched])
    assert np.abs(momentum[untouched]).max() == 0.0
    assert (np.abs(after[sampled[0]] - before[sampled[0]]).sum(axis=1) > 0).all()
    # The dense optimizer moves every centre through weight decay: the difference sparse_update makes.
    dense_before, dense_after, _, _ = train_centres(0.3, sparse=False, steps=1)
    assert np.abs(dense_after[untouched] - dense_before[untouched]).max() > 0


def test_sparse_update_state_and_misuse():
    head = PartialFC(DIM, CLASSES, sparse_update=True)
    assert sorted(head.state_dict()) == ["momentum", "weight"]
    with pytest.raises(ToolkitError, match="without a training forward and backward"):
        head.step_centers(0.1)
    with pytest.raises(ToolkitError, match="needs sparse_update=True"):
        PartialFC(DIM, CLASSES).step_centers(0.1)
    shards = [np.ones((19, DIM), "float32"), np.full((18, DIM), 2.0, "float32")]
    head.load_center_shards(shards, momentum_shards=shards)
    np.testing.assert_array_equal(head.momentum.numpy(), np.concatenate(shards))


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, repo_root):
    out = tmp_path_factory.mktemp("pfc_2proc")
    env = dict(os.environ, PYTHONPATH=str(repo_root), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", str(out / "log"),
           os.path.abspath(__file__), str(out)]
    done = subprocess.run(cmd, cwd=out, env=env, capture_output=True, text=True, timeout=180)
    logs = "".join(p.read_text(errors="replace")[-3000:] for p in sorted((out / "log").glob("workerlog.*")))
    assert done.returncode == 0, f"2-process run failed:\n{done.stdout[-2000:]}\n{logs}"
    tags = ("full", "sampled", "backbone")
    return [{k: v for k, v in np.load(out / f"rank{r}_{tag}.npz").items()} for r in range(2) for tag in tags]


def test_two_processes_equal_one_process_at_full_ratio(two_process_run):
    rank0, rank1 = two_process_run[0], two_process_run[3]
    embeddings, labels = problem()
    single = run_partial_fc(embeddings, labels, 1.0)
    assert (int(rank0["start"]), int(rank1["start"])) == (0, 19)
    for rank in (rank0, rank1):
        assert float(rank["loss"]) == pytest.approx(single["loss"], rel=1e-6)
    np.testing.assert_array_equal(np.concatenate([rank0["weight"], rank1["weight"]]), single["weight"])
    np.testing.assert_allclose(np.concatenate([rank0["grad"], rank1["grad"]]), single["grad"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.concatenate([rank0["wgrad"], rank1["wgrad"]]), single["wgrad"], rtol=1e-4, atol=1e-6)


def test_two_processes_sample_what_one_process_samples_and_match_softmax_over_sampled_centres(two_process_run):
    rank0, rank1 = two_process_run[1], two_process_run[4]
    embeddings, labels = problem()
    single = run_partial_fc(embeddings, labels, 0.5, key=SAMPLING_KEY)
    np.testing.assert_array_equal(np.concatenate([rank0["index"], rank1["index"] + int(rank1["start"])]),
                                  single["index"])
    assert float(rank0["loss"]) == pytest.approx(single["loss"], rel=1e-6)
    centres, columns = [], []
    for rank in (rank0, rank1):
        start, index, count = int(rank["start"]), rank["index"], len(rank["weight"])
        positives = {int(l) - start for l in labels if start <= l < start + count}
        assert positives <= set(index.tolist())
        unsampled = np.setdiff1d(np.arange(count), index)
        assert np.abs(rank["wgrad"][unsampled]).max() == 0.0
        centres.append(rank["weight"][index])
        columns.append(index + start)
    columns = np.concatenate(columns)
    loss, grad, wgrad = reference(embeddings, np.searchsorted(columns, labels), np.concatenate(centres))
    for rank in (rank0, rank1):
        assert float(rank["loss"]) == pytest.approx(loss, rel=1e-6)
    np.testing.assert_allclose(np.concatenate([rank0["grad"], rank1["grad"]]), grad, rtol=1e-4, atol=1e-6)
    sampled_wgrad = np.concatenate([rank0["wgrad"][rank0["index"]], rank1["wgrad"][rank1["index"]]])
    np.testing.assert_allclose(sampled_wgrad, wgrad, rtol=1e-4, atol=1e-6)


def test_summed_backbone_gradients_over_two_processes_equal_one_process(two_process_run):
    embeddings, labels = problem()
    single = run_with_backbone(embeddings[:, :6], labels)
    for rank in (two_process_run[2], two_process_run[5]):
        np.testing.assert_allclose(rank["grad"], single, rtol=1e-4, atol=1e-6)


def worker(out_dir):
    import paddle.distributed as dist
    dist.init_parallel_env()
    rank = dist.get_rank()
    embeddings, labels = problem()
    rows = RANK_ROWS[rank]
    for tag, ratio in (("full", 1.0), ("sampled", 0.5)):
        out = run_partial_fc(embeddings[rows], labels[rows], ratio, seed=10 + rank, key=SAMPLING_KEY)
        np.savez(os.path.join(out_dir, f"rank{rank}_{tag}.npz"), **out)
    grad = run_with_backbone(embeddings[rows, :6], labels[rows])
    np.savez(os.path.join(out_dir, f"rank{rank}_backbone.npz"), grad=grad)


if __name__ == "__main__":
    worker(sys.argv[1])
