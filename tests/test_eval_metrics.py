"""Verification metrics against hand-computed values."""
import numpy as np
import pytest

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.evaluation import evaluate_embeddings, evaluate_layer, metrics

# Six pairs, scores high → low, labels P P N P N N (hand-worked below).
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
LABELS = np.array([1, 1, 0, 1, 0, 0], dtype=bool)


def test_best_threshold_hand_computed():
    # Accept top-2: 2 TP + 3 TN = 5/6; accept top-4: 3 TP + 2 TN = 5/6; tie → stricter cut (0.8|0.7).
    threshold, accuracy = metrics.best_threshold(SCORES, LABELS)
    assert threshold == pytest.approx(0.75)
    assert accuracy == pytest.approx(5 / 6)
    assert metrics.accuracy_at(SCORES, LABELS, threshold) == pytest.approx(5 / 6)


def test_best_threshold_never_cuts_inside_ties():
    # Equal scores must fall on the same side: best is accept-all-three-0.5s or none.
    scores = np.array([0.5, 0.5, 0.5, 0.1])
    labels = np.array([1, 1, 0, 0], dtype=bool)
    threshold, accuracy = metrics.best_threshold(scores, labels)
    assert accuracy == pytest.approx(3 / 4)
    assert 0.1 < threshold <= 0.5


def test_best_threshold_separable_and_all_negative():
    threshold, accuracy = metrics.best_threshold(np.array([0.9, 0.2]), np.array([True, False]))
    assert (threshold, accuracy) == (pytest.approx(0.55), 1.0)
    threshold, accuracy = metrics.best_threshold(np.array([0.3, 0.2]), np.array([False, False]))
    assert accuracy == 1.0 and threshold > 0.3


def test_tar_at_far_hand_computed():
    # 3 negatives: FAR 0.34 lets floor(1.02)=1 impostor in → threshold at 2nd negative (0.5): all 3 positives above.
    assert metrics.tar_at_far(SCORES, LABELS, 0.34) == pytest.approx(1.0)
    # FAR 0.1 lets none in → positives strictly above the top negative 0.7: 0.9, 0.8 → 2/3.
    assert metrics.tar_at_far(SCORES, LABELS, 0.1) == pytest.approx(2 / 3)


def test_tar_at_fars_skips_unmeasurable():
    rng = np.random.default_rng(0)
    labels = np.array([True] * 50 + [False] * 2000)
    scores = rng.normal(size=labels.size) + 3 * labels
    result = metrics.tar_at_fars(scores, labels, (1e-3, 1e-4))
    assert list(result) == [1e-3]            # 2000 negatives measure 1e-3 (2 false accepts) but not 1e-4
    negatives = np.sort(scores[~labels])[::-1]
    assert result[1e-3] == pytest.approx(np.mean(scores[labels] > negatives[2]))


def test_pair_scores_and_xnorm():
    emb = np.array([[3.0, 4.0], [6.0, 8.0], [1.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(metrics.pair_scores(emb), [1.0, 0.0])
    assert metrics.mean_l2_norm(emb) == pytest.approx((5 + 10 + 1 + 2) / 4)


def test_kfold_accuracy_hand_computed():
    # 10 pairs, one per fold. Training folds always allow a perfect cut between 0.4 and 0.6 except
    # around the one mislabelled pair (score 0.95, label False): it is wrong whenever it is the test fold.
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.95, 0.4, 0.3, 0.2, 0.1, 0.05])
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    accuracies, thresholds = metrics.kfold_accuracy(scores, labels, n_folds=10)
    expected = np.ones(10)
    expected[4] = 0.0
    np.testing.assert_allclose(accuracies, expected)
    assert thresholds[4] == pytest.approx(0.5)


def test_evaluate_embeddings_summary():
    # 20 pairs on 2-D unit vectors: pair k has angle a_k between its rows; cos = score.
    rng = np.random.default_rng(1)
    angles = np.concatenate([rng.uniform(0.0, 0.5, 10), rng.uniform(1.5, 3.0, 10)])
    labels = np.array([True] * 10 + [False] * 10)
    rows = []
    for angle in angles:
        rows += [[2.0, 0.0], [2.0 * np.cos(angle), 2.0 * np.sin(angle)]]
    result = evaluate_embeddings(np.array(rows), labels)
    assert result.accuracy == 1.0 and result.accuracy_std == 0.0
    assert result.num_pairs == 20 and result.xnorm == pytest.approx(2.0)
    assert np.cos(1.5) < result.best_threshold < np.cos(0.5)
    assert result.auc == 1.0 and result.tar_at_far == {}          # 10 impostors can't measure 1e-3
    np.testing.assert_allclose(result.scores, np.cos(angles), atol=1e-12)
    summary = result.as_dict()
    assert set(summary) >= {"accuracy", "accuracy_std", "best_threshold", "xnorm", "tar_at_far", "num_pairs"}
    assert "scores" not in summary


def test_evaluate_embeddings_bad_input():
    with pytest.raises(ToolkitError, match="two rows per pair"):
        evaluate_embeddings(np.zeros((21, 4)), np.ones(10, bool))
    with pytest.raises(ToolkitError, match="NaN"):
        evaluate_embeddings(np.full((20, 4), np.nan), np.ones(10, bool))
    with pytest.raises(ToolkitError, match="10-fold"):
        evaluate_embeddings(np.ones((8, 4)), np.ones(4, bool))


class _FlipAware:
    """A fake 'layer' for the protocol: embeds an image as [mean of left half, mean of right half]."""
    training = False

    def eval(self):
        pass

    def __call__(self, x):
        import paddle
        width = x.shape[3]
        left = paddle.mean(x[:, :, :, : width // 2], axis=[1, 2, 3])
        right = paddle.mean(x[:, :, :, width // 2:], axis=[1, 2, 3])
        return paddle.stack([left, right], axis=1) + 2.0


def test_evaluate_layer_sums_flips():
    # Left-right mirrored pairs have the same flip-summed embedding → cosine 1 only with the flip sum.
    rng = np.random.default_rng(2)
    images, labels = [], []
    for k in range(20):
        image = rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
        same = k % 2 == 0
        other = image[:, ::-1] if same else rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
        images += [image, other]
        labels.append(same)
    result = evaluate_layer(_FlipAware(), np.stack(images), np.array(labels), batch_size=7)
    np.testing.assert_allclose(result.scores[0::2], 1.0, atol=1e-6)   # mirrored pairs
    assert result.num_pairs == 20


def _pairs_with_scores(scores):
    """Embedding rows whose pair k has cosine scores[k] (2-D unit vectors at angle arccos(score))."""
    rows = []
    for score in scores:
        rows += [[1.0, 0.0], [score, np.sqrt(max(0.0, 1.0 - score * score))]]
    return np.array(rows)


def test_auc_hand_computed():
    # Scores 0.9 P, 0.8 P, 0.7 N, 0.6 P, 0.5 N, 0.4 N: of 9 positive/negative orderings only (0.6 P, 0.7 N) is
    # wrong, so AUC = 8/9.
    result = evaluate_embeddings(_pairs_with_scores(SCORES), LABELS, n_folds=2)
    assert result.auc == pytest.approx(8 / 9)
    np.testing.assert_allclose(result.scores, SCORES, atol=1e-12)


def _reference_protocol_by_loops(scores, labels):
    """The reference protocol written out plainly: distance d² = 2 - 2·cos, "same" when d² < t for t on the grid
    0, 0.01, ..., 3.99; per fold the first best grid point of the other nine (contiguous folds)."""
    distances = 2.0 - 2.0 * scores
    grid = [i / 100.0 for i in range(400)]
    n = len(scores)
    sizes = [n // 10 + (1 if i < n % 10 else 0) for i in range(10)]
    starts = np.cumsum([0] + sizes)
    accuracies = []
    for fold in range(10):
        test = list(range(starts[fold], starts[fold + 1]))
        train = [i for i in range(n) if i not in test]
        best_t, best_acc = None, -1.0
        for t in grid:
            acc = sum((distances[i] < t) == labels[i] for i in train) / len(train)
            if acc > best_acc:
                best_t, best_acc = t, acc
        accuracies.append(sum((distances[i] < best_t) == labels[i] for i in test) / len(test))
    return np.array(accuracies)


def test_reference_protocol_against_plain_loops():
    rng = np.random.default_rng(5)
    labels = rng.random(203) < 0.5
    scores = np.clip(rng.normal(0.15, 0.2, labels.size) + 0.45 * labels, -1, 1)
    accuracies, thresholds = metrics.reference_kfold_accuracy(scores, labels)
    np.testing.assert_allclose(accuracies, _reference_protocol_by_loops(scores, labels))
    assert all(round(t * 100) == pytest.approx(t * 100) for t in thresholds)     # grid points
    result = evaluate_embeddings(_pairs_with_scores(scores), labels, protocol="reference")
    assert result.protocol == "reference" and result.accuracy == pytest.approx(accuracies.mean())
    # The exact cut is at least as good as any grid point on all pairs.
    exact = evaluate_embeddings(_pairs_with_scores(scores), labels)
    assert exact.best_accuracy >= result.best_accuracy
    with pytest.raises(ToolkitError, match="protocol"):
        evaluate_embeddings(_pairs_with_scores(scores), labels, protocol="lfw")


def test_reference_xnorm_over_both_flips():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(20, 4, 6, 3), dtype=np.uint8)
    labels = np.array([True, False] * 5)
    exact = evaluate_layer(_FlipAware(), images, labels)
    reference = evaluate_layer(_FlipAware(), images, labels, protocol="reference")
    plain = np.stack([images[:, :, :3].mean(axis=(1, 2, 3)), images[:, :, 3:].mean(axis=(1, 2, 3))], 1) / 127.5 - 1
    flipped = plain[:, ::-1]
    assert exact.xnorm == pytest.approx(np.linalg.norm(plain + 2.0, axis=1).mean(), rel=1e-5)
    both = np.concatenate([plain, flipped]) + 2.0
    assert reference.xnorm == pytest.approx(np.linalg.norm(both, axis=1).mean(), rel=1e-5)


def test_threshold_at_far_is_the_operating_point_of_tar_at_far():
    rng = np.random.default_rng(4)
    labels = np.array([True] * 300 + [False] * 3000)
    scores = np.round(rng.normal(size=labels.size) + 2.5 * labels, 3)          # rounding makes ties
    for far in (1e-2, 1e-3):
        threshold = metrics.threshold_at_far(scores, labels, far)
        accepted = scores >= threshold
        assert np.sum(accepted & ~labels) <= far * 3000                         # FAR kept
        assert np.mean(accepted[labels]) == pytest.approx(metrics.tar_at_far(scores, labels, far))
        # Any lower threshold lets one impostor more in than the FAR allows.
        below = np.max(scores[scores < threshold])
        assert np.sum((scores >= below) & ~labels) > far * 3000
    assert metrics.threshold_at_far(scores, labels, 1e-4) is None               # 3000 impostors can't say


def test_every_report_has_the_same_far_columns():
    from arcface_paddle.evaluation.report import results_table

    rng = np.random.default_rng(6)
    labels = np.array([True] * 100 + [False] * 200)
    result = evaluate_embeddings(_pairs_with_scores(np.clip(rng.normal(size=300) * 0.3 + 0.4 * labels, -1, 1)),
                                 labels, fars=(1e-2, 1e-3, 1e-4))
    assert result.fars == (1e-2, 1e-3, 1e-4) and list(result.tar_at_far) == [1e-2]    # 200 impostors: 1e-2 only
    summary = result.as_dict()
    assert list(summary["tar_at_far"]) == ["1e-02", "1e-03", "1e-04"]
    assert summary["tar_at_far"]["1e-03"] is None and summary["threshold_at_far"]["1e-02"] is not None
    header = results_table({"set": result}).splitlines()[1]
    assert [h.strip() for h in header.split("|") if "TAR" in h] == ["TAR@FAR=1e-02", "TAR@FAR=1e-03",
                                                                      "TAR@FAR=1e-04"]
