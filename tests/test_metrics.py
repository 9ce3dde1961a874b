"""tfg.metrics against hand-computed cases, the edge cases (zero division, a
class never predicted, tied scores, constant targets), input kinds (lists,
NumPy, Tensors, 2-D scores), bad input, and scikit-learn when importable."""
import math

import numpy as np
import pytest

import tensorforge as tfg
from tensorforge import metrics

# 10 samples, 3 classes; confusion matrix (rows true, columns predicted):
#   [[2, 1, 0],
#    [0, 3, 1],
#    [1, 0, 2]]
Y3_TRUE = [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
Y3_PRED = [0, 0, 1, 1, 1, 1, 2, 0, 2, 2]
CM3 = np.array([[2, 1, 0], [0, 3, 1], [1, 0, 2]])

# Binary: tp = 3, fp = 1, fn = 2, tn = 2.
YB_TRUE = [1, 1, 1, 1, 1, 0, 0, 0]
YB_PRED = [1, 1, 1, 0, 0, 1, 0, 0]


def test_accuracy_hand():
    assert metrics.accuracy(Y3_TRUE, Y3_PRED) == pytest.approx(7 / 10)
    assert metrics.accuracy(YB_TRUE, YB_PRED) == pytest.approx(5 / 8)
    assert isinstance(metrics.accuracy(YB_TRUE, YB_PRED), float)


def test_confusion_matrix_hand():
    cm = metrics.confusion_matrix(Y3_TRUE, Y3_PRED)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, CM3)
    cm5 = metrics.confusion_matrix(Y3_TRUE, Y3_PRED, num_classes=5)
    assert cm5.shape == (5, 5)
    np.testing.assert_array_equal(cm5[:3, :3], CM3)
    assert cm5[3:].sum() == 0 and cm5[:, 3:].sum() == 0


def test_binary_precision_recall_f1_hand():
    assert metrics.precision(YB_TRUE, YB_PRED) == pytest.approx(3 / 4)
    assert metrics.recall(YB_TRUE, YB_PRED) == pytest.approx(3 / 5)
    assert metrics.f1_score(YB_TRUE, YB_PRED) == pytest.approx(2 * 3 / (2 * 3 + 1 + 2))
    # pos_label=0: tp = 2, fp = 2, fn = 1
    assert metrics.precision(YB_TRUE, YB_PRED, pos_label=0) == pytest.approx(2 / 4)
    assert metrics.recall(YB_TRUE, YB_PRED, pos_label=0) == pytest.approx(2 / 3)
    assert metrics.f1_score(YB_TRUE, YB_PRED, pos_label=0) == pytest.approx(4 / 7)


def test_macro_hand():
    p = [2 / 3, 3 / 4, 2 / 3]
    r = [2 / 3, 3 / 4, 2 / 3]
    f = [2 * a * b / (a + b) for a, b in zip(p, r)]
    assert metrics.precision(Y3_TRUE, Y3_PRED, average="macro") == pytest.approx(np.mean(p))
    assert metrics.recall(Y3_TRUE, Y3_PRED, average="macro") == pytest.approx(np.mean(r))
    assert metrics.f1_score(Y3_TRUE, Y3_PRED, average="macro") == pytest.approx(np.mean(f))


def test_class_never_predicted():
    # class 2 is in y_true but never predicted: its precision is 0/0 -> 0.0,
    # recall 0/2 = 0, F1 0.
    y_true = [0, 1, 2, 2, 1, 0]
    y_pred = [0, 1, 1, 1, 1, 0]
    assert metrics.precision(y_true, y_pred, average="macro") == pytest.approx((1 + 0.5 + 0) / 3)
    assert metrics.recall(y_true, y_pred, average="macro") == pytest.approx((1 + 1 + 0) / 3)
    assert metrics.f1_score(y_true, y_pred, average="macro") == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert metrics.precision(y_true, y_pred, average="macro", zero_division=1.0) == pytest.approx(
        (1 + 0.5 + 1) / 3
    )


def test_label_absent_everywhere_is_not_averaged():
    # labels 0 and 2 only: class 1 appears in neither array and is not in the macro mean
    y_true = [0, 2, 2, 0]
    y_pred = [0, 2, 0, 0]
    assert metrics.recall(y_true, y_pred, average="macro") == pytest.approx((1 + 0.5) / 2)


def test_binary_zero_division():
    # no predicted positives -> precision 0/0; no actual positives -> recall 0/0
    assert metrics.precision([1, 0, 1], [0, 0, 0]) == 0.0
    assert metrics.recall([0, 0, 0], [1, 0, 0]) == 0.0
    assert metrics.f1_score([0, 0, 0], [0, 0, 0]) == 0.0
    assert metrics.f1_score([0, 0, 0], [0, 0, 0], zero_division=1.0) == 1.0
    assert math.isnan(metrics.precision([1, 0], [0, 0], zero_division=float("nan")))


def test_scores_argmax():
    logits = np.array([[2.0, 0.1, 0.0], [0.0, 1.0, -1.0], [0.3, 0.2, 0.9], [5.0, 6.0, 1.0]])
    y_true = [0, 1, 1, 1]
    assert metrics.accuracy(y_true, logits) == pytest.approx(3 / 4)
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, logits), [[1, 0, 0], [0, 2, 1], [0, 0, 0]]
    )
    probs2 = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert metrics.recall([0, 1, 1], probs2) == pytest.approx(1 / 2)


def test_input_kinds_agree():
    expected = metrics.f1_score(YB_TRUE, YB_PRED)
    as_np = metrics.f1_score(np.array(YB_TRUE, dtype=np.int32), np.array(YB_PRED, dtype=np.uint8))
    as_bool = metrics.f1_score(np.array(YB_TRUE, dtype=bool), np.array(YB_PRED, dtype=bool))
    as_float = metrics.f1_score(np.array(YB_TRUE, dtype=np.float32), np.array(YB_PRED, dtype=np.float64))
    assert as_np == as_bool == as_float == pytest.approx(expected)


def test_tensor_inputs():
    t = tfg.tensor(Y3_TRUE)
    logits = np.eye(3, dtype=np.float32)[Y3_PRED] * 2.0 - 1.0
    scores = tfg.tensor(logits, requires_grad=True)  # detached internally
    assert metrics.accuracy(t, scores) == pytest.approx(0.7)
    np.testing.assert_array_equal(metrics.confusion_matrix(t, tfg.tensor(Y3_PRED)), CM3)
    assert metrics.roc_auc(tfg.tensor([0.0, 1.0, 1.0]), tfg.tensor([0.2, 0.1, 0.9])) == pytest.approx(0.5)
    assert metrics.mse(tfg.tensor([1.0, 2.0]), tfg.tensor([[1.5], [2.0]], requires_grad=True)) == (
        pytest.approx(0.125)
    )


def test_roc_auc_hand():
    # perfect and reversed ranking
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert metrics.roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    # pairs (pos, neg): (0.35,0.1) win, (0.35,0.4) loss, (0.8,0.1) win, (0.8,0.4) win
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)


def test_roc_auc_ties():
    # every score tied: each pair counts one half
    assert metrics.roc_auc([0, 1, 0, 1, 1], [0.5] * 5) == pytest.approx(0.5)
    # pos scores [1, 2, 2], neg scores [2, 0]: pairs -> 1 vs 2: 0, 1 vs 0: 1,
    # 2 vs 2: 0.5 (twice), 2 vs 0: 1 (twice) -> 4 / 6
    assert metrics.roc_auc([1, 1, 1, 0, 0], [1, 2, 2, 2, 0]) == pytest.approx(4 / 6)


def test_roc_auc_label_conventions_and_two_column_scores():
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    assert metrics.roc_auc([-1, -1, 1, 1], scores) == pytest.approx(0.75)
    assert metrics.roc_auc([False, False, True, True], scores) == pytest.approx(0.75)
    two = np.stack([1 - scores, scores], axis=1)
    assert metrics.roc_auc([0, 0, 1, 1], two) == pytest.approx(0.75)
    assert metrics.roc_auc([0, 0, 1, 1], scores[:, None]) == pytest.approx(0.75)


def test_roc_auc_matches_pair_count():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    s = rng.integers(0, 12, 300).astype(np.float64)  # many ties
    pos, neg = s[y == 1], s[y == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert metrics.roc_auc(y, s) == pytest.approx(wins / (pos.size * neg.size), rel=1e-12)


def test_roc_auc_one_class_errors():
    with pytest.raises(ValueError, match="two classes"):
        metrics.roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="two classes"):
        metrics.roc_auc([0, 1, 2], [0.1, 0.2, 0.3])


def test_regression_hand():
    y_true = [3.0, -0.5, 2.0, 7.0]
    y_pred = [2.5, 0.0, 2.0, 8.0]
    assert metrics.mae(y_true, y_pred) == pytest.approx(0.5)
    assert metrics.mse(y_true, y_pred) == pytest.approx(0.375)
    assert metrics.rmse(y_true, y_pred) == pytest.approx(math.sqrt(0.375))
    mean = np.mean(y_true)
    ss_tot = sum((v - mean) ** 2 for v in y_true)
    assert metrics.r2_score(y_true, y_pred) == pytest.approx(1 - 1.5 / ss_tot)
    assert isinstance(metrics.mae(y_true, y_pred), float)


def test_regression_shapes():
    y = np.arange(6, dtype=np.float32)
    assert metrics.mse(y, y[:, None] + 1) == pytest.approx(1.0)
    a = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    b = np.array([[1.0, 12.0], [2.0, 20.0], [4.0, 30.0]])
    assert metrics.rmse(a, b) == pytest.approx((math.sqrt(1 / 3) + math.sqrt(4 / 3)) / 2)
    assert metrics.r2_score(a, b) == pytest.approx(((1 - 1 / 2) + (1 - 4 / 200)) / 2)


def test_r2_constant_target():
    assert metrics.r2_score([2.0, 2.0, 2.0], [2.0, 2.0, 2.0]) == 1.0
    assert metrics.r2_score([2.0, 2.0, 2.0], [2.0, 1.0, 2.0]) == 0.0


def test_bad_input():
    with pytest.raises(ValueError, match="different lengths: 3 and 2"):
        metrics.accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        metrics.accuracy([], [])
    with pytest.raises(ValueError, match="non-integral"):
        metrics.precision([0, 1], [0.2, 0.7])
    with pytest.raises(ValueError, match=">= 0"):
        metrics.accuracy([0, -1], [0, 1])
    with pytest.raises(ValueError, match="average"):
        metrics.f1_score([0, 1], [0, 1], average="weird")
    with pytest.raises(ValueError, match="at most two classes"):
        metrics.precision(Y3_TRUE, Y3_PRED)
    with pytest.raises(ValueError, match="pos_label=1"):
        metrics.recall([0, 2, 2], [0, 2, 0])
    with pytest.raises(ValueError, match="out of range for num_classes=2"):
        metrics.confusion_matrix(Y3_TRUE, Y3_PRED, num_classes=2)
    with pytest.raises(ValueError, match="incompatible shapes"):
        metrics.mse([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="NaN"):
        metrics.mae([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(TypeError, match="dtype"):
        metrics.accuracy(["a", "b"], [0, 1])
    with pytest.raises(ValueError, match="one column per class"):
        metrics.accuracy([0, 1], np.array([[0.2], [0.9]]))
    with pytest.raises(ValueError, match="1-D"):
        metrics.accuracy(np.zeros((2, 2), dtype=np.int64), [0, 1])


@pytest.fixture(scope="module")
def sk():
    return pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_sklearn_classification(sk, seed):
    rng = np.random.default_rng(seed)
    n, k = 200, 5
    y_true = rng.integers(0, k, n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, k - 1, n))  # class 4 rarely predicted
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(sk.accuracy_score(y_true, y_pred))
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, y_pred), sk.confusion_matrix(y_true, y_pred)
    )
    for ours, theirs in [
        (metrics.precision, sk.precision_score),
        (metrics.recall, sk.recall_score),
        (metrics.f1_score, sk.f1_score),
    ]:
        assert ours(y_true, y_pred, average="macro") == pytest.approx(
            theirs(y_true, y_pred, average="macro", zero_division=0.0), rel=1e-12
        )
        yb, pb = y_true % 2, y_pred % 2
        for pos in (0, 1):
            assert ours(yb, pb, pos_label=pos) == pytest.approx(
                theirs(yb, pb, pos_label=pos, zero_division=0.0), rel=1e-12
            )


@pytest.mark.parametrize("seed", [0, 1])
def test_against_sklearn_roc_auc_and_regression(sk, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.normal(size=500) + y, 1)  # rounded: plenty of ties
    assert metrics.roc_auc(y, s) == pytest.approx(sk.roc_auc_score(y, s), rel=1e-12)
    a = rng.normal(size=(100, 3))
    b = a + rng.normal(scale=0.3, size=(100, 3))
    assert metrics.mae(a, b) == pytest.approx(sk.mean_absolute_error(a, b), rel=1e-12)
    assert metrics.mse(a, b) == pytest.approx(sk.mean_squared_error(a, b), rel=1e-12)
    assert metrics.r2_score(a, b) == pytest.approx(sk.r2_score(a, b), rel=1e-12)
    assert metrics.r2_score(a[:, 0], b[:, 0]) == pytest.approx(sk.r2_score(a[:, 0], b[:, 0]), rel=1e-12)
    if hasattr(sk, "root_mean_squared_error"):
        assert metrics.rmse(a, b) == pytest.approx(sk.root_mean_squared_error(a, b), rel=1e-12)
