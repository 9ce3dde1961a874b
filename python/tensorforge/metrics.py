"""Evaluation metrics for classification and regression, in scikit-learn's style.

Every function takes `(y_true, y_pred, ...)` as tfg Tensors, NumPy arrays or
lists and returns a Python float (`confusion_matrix` returns an int64 NumPy
array). Class labels are non-negative integers (bool and integral floats are
accepted). The classification metrics also accept `y_pred` as a 2-D array of
per-class scores, logits or probabilities, shape (N, C): the predicted label
is its argmax over dim 1.

Note [zero division]: precision with no predicted positives, recall with no
actual positives, and F1 with neither are undefined; like scikit-learn's
default (`zero_division="warn"`, which returns 0) they count as 0.0 here,
without a warning. Pass `zero_division=1.0` (or `float("nan")`) to change it.
"""
import math

import numpy as np

from .tensor import Tensor

__all__ = [
    "accuracy",
    "precision",
    "recall",
    "f1_score",
    "confusion_matrix",
    "roc_auc",
    "mae",
    "mse",
    "rmse",
    "r2_score",
]

_AVERAGES = ("binary", "macro")


def _to_numpy(x, name):
    """x as a NumPy array of a numeric or bool dtype (Tensors are detached and moved to the CPU)."""
    if isinstance(x, Tensor):
        x = x.detach()
        if x.device.type != "cpu":
            x = x.cpu()
        arr = x.numpy()
    else:
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name}: cannot convert {type(x).__name__} to an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected numbers or bools, got an array of dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{name}: is empty")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError(f"{name}: contains NaN")
    return arr


def _labels(arr, name):
    """A 1-D int64 array of class labels from bool, integer or integral float values."""
    if arr.ndim != 1:
        raise ValueError(f"{name}: class labels must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not (np.isfinite(arr).all() and np.array_equal(arr, np.floor(arr))):
            raise ValueError(
                f"{name}: class labels must be integers, got non-integral floats "
                "(threshold probabilities or pass 2-D scores)"
            )
    labels = arr.astype(np.int64)
    if labels.min() < 0:
        raise ValueError(f"{name}: class labels must be >= 0, got {labels.min()}")
    return labels


def _true_labels(y_true):
    return _labels(_to_numpy(y_true, "y_true"), "y_true")


def _pred_labels(y_pred):
    """Predicted labels from 1-D labels or the argmax over dim 1 of 2-D scores."""
    arr = _to_numpy(y_pred, "y_pred")
    if arr.ndim == 2:
        if arr.shape[1] < 2:
            raise ValueError(
                f"y_pred: 2-D scores need one column per class (at least 2), got shape {arr.shape}; "
                "threshold a single score column into labels instead"
            )
        return np.argmax(arr, axis=1).astype(np.int64)
    return _labels(arr, "y_pred")


def _label_pair(y_true, y_pred):
    t = _true_labels(y_true)
    p = _pred_labels(y_pred)
    if t.shape[0] != p.shape[0]:
        raise ValueError(f"y_true and y_pred have different lengths: {t.shape[0]} and {p.shape[0]}")
    return t, p


def _counts(t, p, num_classes):
    """(K, K) confusion counts, rows = true label, columns = predicted label."""
    flat = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _ratio(num, den, zero_division):
    """num / den elementwise, `zero_division` where den == 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(num.shape, float(zero_division), dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _check_zero_division(zero_division):
    if isinstance(zero_division, bool) or not isinstance(zero_division, (int, float)):
        raise TypeError(f"zero_division must be a number, got {zero_division!r}")
    zd = float(zero_division)
    if not (zd in (0.0, 1.0) or math.isnan(zd)):
        raise ValueError(f"zero_division must be 0.0, 1.0 or nan, got {zero_division!r}")
    return zd


def _tp_fp_fn(y_true, y_pred, average, pos_label):
    """Per-class true-positive, false-positive and false-negative counts for the
    classes that `average` scores: the positive class alone for "binary", every
    label present in y_true or y_pred for "macro"."""
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}")
    t, p = _label_pair(y_true, y_pred)
    num_classes = int(max(t.max(), p.max())) + 1
    cm = _counts(t, p, num_classes)
    tp = np.diag(cm)
    true_count = cm.sum(axis=1)
    pred_count = cm.sum(axis=0)
    present = np.flatnonzero((true_count + pred_count) > 0)
    if average == "binary":
        if isinstance(pos_label, bool) or not isinstance(pos_label, (int, np.integer)):
            raise TypeError(f"pos_label must be an integer label, got {pos_label!r}")
        if present.size > 2:
            raise ValueError(
                f"average='binary' needs at most two classes, found labels {present.tolist()}; "
                "use average='macro' for multiclass"
            )
        if present.size == 2 and pos_label not in present:
            raise ValueError(f"pos_label={pos_label} is not one of the labels present, {present.tolist()}")
        if pos_label < 0:
            raise ValueError(f"pos_label must be >= 0, got {pos_label}")
        if pos_label >= num_classes:
            return np.zeros(1), np.zeros(1), np.zeros(1)
        classes = np.array([pos_label])
    else:
        classes = present
    tp = tp[classes]
    return tp, pred_count[classes] - tp, true_count[classes] - tp


def accuracy(y_true, y_pred):
    """Fraction of samples whose predicted label equals the true label.

    y_pred may be labels (N,) or scores (N, C), whose argmax over dim 1 is the label.
    """
    t, p = _label_pair(y_true, y_pred)
    return float(np.count_nonzero(t == p) / t.shape[0])


def precision(y_true, y_pred, average="binary", pos_label=1, zero_division=0.0):
    """Precision tp / (tp + fp): of the positive class for average="binary"
    (`pos_label`), or the unweighted mean over the classes present in y_true or
    y_pred for average="macro". No predicted positives gives `zero_division`
    (see Note [zero division] in this module)."""
    zd = _check_zero_division(zero_division)
    tp, fp, _ = _tp_fp_fn(y_true, y_pred, average, pos_label)
    return float(_ratio(tp, tp + fp, zd).mean())


def recall(y_true, y_pred, average="binary", pos_label=1, zero_division=0.0):
    """Recall tp / (tp + fn), per class as in `precision`, binary or macro-averaged.
    No actual positives gives `zero_division`."""
    zd = _check_zero_division(zero_division)
    tp, _, fn = _tp_fp_fn(y_true, y_pred, average, pos_label)
    return float(_ratio(tp, tp + fn, zd).mean())


def f1_score(y_true, y_pred, average="binary", pos_label=1, zero_division=0.0):
    """F1 = 2 tp / (2 tp + fp + fn), the harmonic mean of precision and recall;
    macro averaging takes the mean of the per-class F1 scores (as scikit-learn).
    A class with neither actual nor predicted positives gives `zero_division`."""
    zd = _check_zero_division(zero_division)
    tp, fp, fn = _tp_fp_fn(y_true, y_pred, average, pos_label)
    return float(_ratio(2 * tp, 2 * tp + fp + fn, zd).mean())


def confusion_matrix(y_true, y_pred, num_classes=None):
    """Int64 array (K, K) whose [i, j] counts samples of true class i predicted as j.

    K is `num_classes` when given (labels must then be below it), else one more
    than the largest label seen.
    """
    t, p = _label_pair(y_true, y_pred)
    largest = int(max(t.max(), p.max()))
    if num_classes is None:
        num_classes = largest + 1
    else:
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
            raise TypeError(f"num_classes must be an integer, got {num_classes!r}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if largest >= num_classes:
            raise ValueError(f"label {largest} is out of range for num_classes={num_classes}")
    return _counts(t, p, int(num_classes)).astype(np.int64)


def _binary_scores(y_score):
    """1-D scores for the positive class: a 1-D array, an (N, 1) column, or the
    margin s[:, 1] - s[:, 0] of two-class logits or probabilities (monotone in
    the positive class's softmax probability)."""
    arr = _to_numpy(y_score, "y_score")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    elif arr.ndim == 2 and arr.shape[1] == 2:
        arr = arr[:, 1].astype(np.float64) - arr[:, 0].astype(np.float64)
    if arr.ndim != 1:
        raise ValueError(f"y_score: expected shape (N,), (N, 1) or (N, 2), got {arr.shape}")
    return arr.astype(np.float64)


def roc_auc(y_true, y_score):
    """Area under the ROC curve of binary labels against real-valued scores.

    y_true holds exactly two distinct values; the larger is the positive class
    (so {0, 1}, {False, True} and {-1, 1} all work). The area is exact with tied
    scores: it is the Mann-Whitney statistic with tied scores counted as one
    half, which equals the trapezoid area under the ROC curve.
    """
    labels = _to_numpy(y_true, "y_true")
    if labels.ndim != 1:
        raise ValueError(f"y_true: expected 1-D binary labels, got shape {labels.shape}")
    scores = _binary_scores(y_score)
    if labels.shape[0] != scores.shape[0]:
        raise ValueError(
            f"y_true and y_score have different lengths: {labels.shape[0]} and {scores.shape[0]}"
        )
    classes = np.unique(labels)
    if classes.size != 2:
        raise ValueError(
            f"roc_auc needs exactly two classes in y_true, found {classes.size}: {classes.tolist()} "
            "(the area is undefined when only one class is present)"
        )
    positive = labels == classes[1]
    n_pos = int(np.count_nonzero(positive))
    n_neg = labels.shape[0] - n_pos
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    mean_rank = ends - (counts - 1) / 2.0
    pos_rank_sum = mean_rank[inverse.reshape(-1)][positive].sum()
    return float((pos_rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _regression_pair(y_true, y_pred):
    """y_true and y_pred as float64 (N, K) arrays: 1-D becomes one column, more
    than two dims are flattened after the first."""
    t = _to_numpy(y_true, "y_true")
    p = _to_numpy(y_pred, "y_pred")
    t2 = t.reshape(t.shape[0], -1) if t.ndim else t.reshape(1, 1)
    p2 = p.reshape(p.shape[0], -1) if p.ndim else p.reshape(1, 1)
    if t2.shape != p2.shape:
        raise ValueError(f"y_true and y_pred have incompatible shapes: {t.shape} and {p.shape}")
    return t2.astype(np.float64), p2.astype(np.float64)


def mae(y_true, y_pred):
    """Mean absolute error."""
    t, p = _regression_pair(y_true, y_pred)
    return float(np.abs(t - p).mean())


def mse(y_true, y_pred):
    """Mean squared error."""
    t, p = _regression_pair(y_true, y_pred)
    return float(np.square(t - p).mean())


def rmse(y_true, y_pred):
    """Root mean squared error (for several output columns, the mean of the
    per-column RMSEs, as scikit-learn's root_mean_squared_error)."""
    t, p = _regression_pair(y_true, y_pred)
    return float(np.sqrt(np.square(t - p).mean(axis=0)).mean())


def r2_score(y_true, y_pred):
    """Coefficient of determination 1 - SS_res / SS_tot (for several output
    columns, the mean of the per-column scores). A constant y_true gives 1.0
    when predicted exactly and 0.0 otherwise, as scikit-learn's default."""
    t, p = _regression_pair(y_true, y_pred)
    ss_res = np.square(t - p).sum(axis=0)
    ss_tot = np.square(t - t.mean(axis=0)).sum(axis=0)
    scores = np.where(ss_res == 0, 1.0, 0.0)
    np.subtract(1.0, ss_res / np.where(ss_tot == 0, 1.0, ss_tot), out=scores, where=ss_tot != 0)
    return float(scores.mean())
