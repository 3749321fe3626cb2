"""Label-based classification metrics: sensitivity/specificity, accuracy, recall, kappa, and the
macro one-vs-rest AUC of multi-class tasks.

``y_true`` comes first; class labels are integers ``0..n_classes-1``.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import rankdata

from medbench.metrics._validation import (
    check_1d,
    check_binary_target,
    check_class_labels,
    check_consistent_length,
    check_finite,
    check_n_classes,
    warn_undefined,
)
from medbench.metrics.ranking import resampled_roc_auc

__all__ = [
    "sensitivity_specificity",
    "accuracy",
    "per_class_recall",
    "quadratic_weighted_kappa",
    "multiclass_auc",
    "resampled_multiclass_auc",
]


def sensitivity_specificity(y_true, y_pred) -> tuple[float, float]:
    """Sensitivity TP / (TP + FN) and specificity TN / (TN + FP) of binary predictions.

    Args:
        y_true: ``(n_samples,)`` labels in {0, 1}.
        y_pred: ``(n_samples,)`` predicted labels in {0, 1}.

    Returns:
        ``(sensitivity, specificity)``; either is NaN with a ``RuntimeWarning`` when ``y_true``
        has no positives (sensitivity) or no negatives (specificity).
    """
    y = check_binary_target(y_true, "y_true")
    p = check_binary_target(y_pred, "y_pred")
    check_consistent_length(y_true=y, y_pred=p)
    n_pos = int(np.count_nonzero(y))
    n_neg = y.size - n_pos
    sens = np.count_nonzero(p & y) / n_pos if n_pos else float("nan")
    spec = np.count_nonzero(~p & ~y) / n_neg if n_neg else float("nan")
    if not n_pos:
        warn_undefined("sensitivity is undefined without positives in y_true; returning NaN")
    if not n_neg:
        warn_undefined("specificity is undefined without negatives in y_true; returning NaN")
    return float(sens), float(spec)


def _labels_from_prediction(y_pred) -> np.ndarray:
    arr = np.asarray(y_pred)
    if arr.ndim == 2:
        check_finite(arr.astype(np.float64), "y_pred")
        return arr.argmax(axis=1)
    return arr


def accuracy(y_true, y_pred) -> float:
    """Fraction of cases whose predicted class equals the true class.

    With ``y_pred`` of shape ``(n_samples, n_classes)`` the prediction is the argmax over classes,
    as in MedMNIST's evaluator (``getACC`` for multi-class tasks).

    Args:
        y_true: ``(n_samples,)`` integer class labels.
        y_pred: ``(n_samples,)`` predicted labels, or ``(n_samples, n_classes)`` scores.

    Reference: Yang et al., MedMNIST v2, Scientific Data 2023.
    """
    y = check_1d(y_true, "y_true")
    pred = _labels_from_prediction(y_pred)
    pred = check_1d(pred, "y_pred")
    check_consistent_length(y_true=y, y_pred=pred)
    return float(np.mean(y == pred))


def _confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` counts, rows = true class, columns = predicted class."""
    return np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def _class_inputs(y_true, y_pred, n_classes: int) -> tuple[np.ndarray, np.ndarray, int]:
    k = check_n_classes(n_classes)
    y = check_class_labels(y_true, k, "y_true")
    pred = check_class_labels(y_pred, k, "y_pred")
    check_consistent_length(y_true=y, y_pred=pred)
    return y, pred, k


def per_class_recall(y_true, y_pred, *, n_classes: int) -> np.ndarray:
    """Recall of each class: correct predictions among the cases of that class.

    Args:
        y_true, y_pred: ``(n_samples,)`` integer labels in ``0..n_classes-1``.
        n_classes: number of classes K.

    Returns:
        ``(K,)`` float array; NaN with a ``RuntimeWarning`` for classes absent from ``y_true``.
        Its NaN-mean is the balanced accuracy.
    """
    y, pred, k = _class_inputs(y_true, y_pred, n_classes)
    cm = _confusion(y, pred, k)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.diag(cm) / support
    if np.any(support == 0):
        missing = np.flatnonzero(support == 0).tolist()
        warn_undefined(f"recall is undefined for classes absent from y_true {missing}; NaN there")
    return recall.astype(np.float64)


def quadratic_weighted_kappa(y_true, y_pred, *, n_classes: int) -> float:
    """Cohen's kappa with quadratic disagreement weights ``(i - j)^2`` (ordinal grades).

    ``kappa = 1 - sum(W * O) / sum(W * E)`` with ``O`` the confusion matrix and ``E`` the outer
    product of its marginals divided by n. Equals ``sklearn.metrics.cohen_kappa_score(...,
    weights="quadratic")`` when every class ``0..n_classes-1`` is allowed.

    Args:
        y_true, y_pred: ``(n_samples,)`` integer grades in ``0..n_classes-1``.
        n_classes: number of grades K.

    Returns:
        kappa in [-1, 1]; NaN with a ``RuntimeWarning`` when the expected disagreement is 0
        (truth and prediction each use a single, same grade).

    Reference: Cohen, Psychological Bulletin 1968 (weighted kappa).
    """
    y, pred, k = _class_inputs(y_true, y_pred, n_classes)
    observed = _confusion(y, pred, k).astype(np.float64)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / y.size
    grades = np.arange(k)
    weights = (grades[:, None] - grades[None, :]) ** 2
    denominator = float((weights * expected).sum())
    if denominator == 0:
        warn_undefined(
            "quadratic weighted kappa is undefined when y_true and y_pred hold one and the same "
            "class only (no expected disagreement); returning NaN"
        )
        return float("nan")
    return float(1 - (weights * observed).sum() / denominator)


def multiclass_auc(y_true, y_score) -> float:
    """Macro-averaged one-vs-rest ROC AUC: the mean over classes of AUC(y == k, y_score[:, k]).

    Reproduces MedMNIST's evaluator (``getAUC`` for multi-class tasks) and
    ``sklearn.metrics.roc_auc_score(y_true, y_score, multi_class="ovr", average="macro")``. Rows
    need not sum to 1: each column is only ranked.

    Args:
        y_true: ``(n_samples,)`` integer labels in ``0..K-1``.
        y_score: ``(n_samples, K)`` finite class scores.

    Returns:
        Macro AUC; NaN with a ``RuntimeWarning`` when some class is absent from ``y_true`` (its
        one-vs-rest AUC, and so the macro mean, is undefined).

    Reference: Yang et al., MedMNIST v2, Scientific Data 2023; Hand & Till, Machine Learning 2001.
    """
    scores = np.asarray(y_score)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(
            f"y_score must have shape (n_samples, n_classes) with n_classes >= 2; got shape "
            f"{scores.shape}"
        )
    scores = check_finite(scores.astype(np.float64), "y_score")
    k = scores.shape[1]
    y = check_class_labels(y_true, k, "y_true")
    check_consistent_length(y_true=y, y_score=scores)
    positives = y[:, None] == np.arange(k)[None, :]
    n_pos = positives.sum(axis=0)
    n_neg = y.size - n_pos
    if np.any((n_pos == 0) | (n_neg == 0)):
        bad = np.flatnonzero((n_pos == 0) | (n_neg == 0)).tolist()
        warn_undefined(
            f"one-vs-rest AUC is undefined for classes {bad} (absent from y_true, or the only "
            "class present); returning NaN for the macro AUC"
        )
        return float("nan")
    ranks = rankdata(scores, axis=0)
    # Mann-Whitney per column: midranks count ties one half, as roc_auc does.
    rank_sums = (ranks * positives).sum(axis=0)
    aucs = (rank_sums - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return float(aucs.mean())


def resampled_multiclass_auc(y_true, y_score, idx) -> np.ndarray:
    """:func:`multiclass_auc` on every row of case indices ``idx`` at once (``(n_resamples,)``).

    Each class's one-vs-rest AUC comes from :func:`medbench.metrics.resampled_roc_auc`; their
    mean is the macro AUC, NaN on a resample where some class is absent, as in
    :func:`multiclass_auc`, and equal to it to the last bit.
    """
    scores = np.asarray(y_score, np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(
            f"y_score must have shape (n_samples, n_classes) with n_classes >= 2; got shape "
            f"{scores.shape}"
        )
    k = scores.shape[1]
    y = check_class_labels(y_true, k, "y_true")
    check_consistent_length(y_true=y, y_score=scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        aucs = np.stack(
            [resampled_roc_auc((y == j).astype(np.int64), scores[:, j], idx) for j in range(k)],
            axis=1,
        )
    if np.isnan(aucs).any():
        warn_undefined(
            f"the macro AUC is undefined on {int(np.isnan(aucs).any(axis=1).sum())} of "
            f"{aucs.shape[0]} resamples that miss a class; returning NaN there"
        )
    return aucs.mean(axis=1)
