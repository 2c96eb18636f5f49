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


def test_roc_curve_and_auc_hand_computed():
    # Scores 0.9 P, 0.8 P, 0.7 N, 0.6 P, 0.5 N, 0.4 N: accepting down to each score in turn.
    fpr, tpr, thresholds = metrics.roc_curve(SCORES, LABELS)
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1])
    np.testing.assert_allclose(fpr, [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    assert thresholds[0] == np.inf and thresholds[-1] == 0.4
    # Of 9 positive/negative orderings only (0.6 P, 0.7 N) is wrong: AUC = 8/9.
    assert metrics.roc_auc(SCORES, LABELS) == pytest.approx(8 / 9)
    # Ties: one P and one N at the same score count one half.
    assert metrics.roc_auc(np.array([0.5, 0.5]), np.array([True, False])) == pytest.approx(0.5)


def test_roc_and_folds_match_sklearn():
    from sklearn.metrics import roc_auc_score, roc_curve
    from sklearn.model_selection import KFold

    rng = np.random.default_rng(5)
    labels = rng.random(997) < 0.4
    scores = np.round(rng.normal(size=labels.size) + labels, 2)          # rounding makes ties
    fpr, tpr, thresholds = metrics.roc_curve(scores, labels)
    sk_fpr, sk_tpr, sk_thresholds = roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thresholds[1:], sk_thresholds[1:])
    assert metrics.roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))
    ours = metrics.kfold_indices(labels.size, 10)
    theirs = [test for _, test in KFold(n_splits=10, shuffle=False).split(scores)]
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs)) and len(ours) == len(theirs)
