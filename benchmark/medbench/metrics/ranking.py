"""Binary ranking metrics: ROC AUC, its DeLong confidence interval and test, operating points.

All functions take ``y_true`` first (labels in {0, 1}), then ``y_score`` (higher = more likely
positive), both of shape ``(n_samples,)``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm, rankdata

from medbench.metrics._validation import (
    check_binary_target,
    check_consistent_length,
    check_fraction,
    check_scores,
    warn_undefined,
)
from medbench.metrics.statistics import case_counts

__all__ = [
    "roc_auc",
    "resampled_roc_auc",
    "delong_ci",
    "delong_test",
    "operating_point",
    "roc_curve",
]


def _binary_inputs(y_true, **scores) -> tuple[np.ndarray, list[np.ndarray]]:
    y = check_binary_target(y_true)
    arrays = [check_scores(s, name) for name, s in scores.items()]
    check_consistent_length(y_true=y, **dict(zip(scores, arrays, strict=True)))
    return y, arrays


def _one_class(y: np.ndarray, what: str) -> bool:
    """True (and warn) when y holds a single class, so ``what`` is undefined."""
    n_pos = int(np.count_nonzero(y))
    if n_pos == 0 or n_pos == y.size:
        warn_undefined(
            f"{what} is undefined when y_true holds one class only "
            f"({n_pos} positives, {y.size - n_pos} negatives); returning NaN"
        )
        return True
    return False


def _auc_from_ranks(ranks_pos: np.ndarray, n_pos: int, n_neg: int) -> np.ndarray:
    # Mann-Whitney U / (m n): midranks count a tied positive-negative pair as one half.
    return (ranks_pos.sum(axis=-1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def roc_auc(y_true, y_score) -> float:
    """Area under the ROC curve, computed from midranks (Mann-Whitney U statistic).

    Equals ``sklearn.metrics.roc_auc_score``: a tied positive-negative pair counts one half.

    Args:
        y_true: ``(n_samples,)`` labels in {0, 1}.
        y_score: ``(n_samples,)`` finite scores, higher = more likely positive.

    Returns:
        AUC in [0, 1]; NaN with a ``RuntimeWarning`` when ``y_true`` holds one class only.

    Reference: Hanley & McNeil, Radiology 1982 (AUC = Mann-Whitney U / (m n)).
    """
    y, (s,) = _binary_inputs(y_true, y_score=y_score)
    if _one_class(y, "ROC AUC"):
        return float("nan")
    n_pos = int(np.count_nonzero(y))
    return float(_auc_from_ranks(rankdata(s)[y], n_pos, y.size - n_pos))


def resampled_roc_auc(y_true, y_score, idx, *, keep=None) -> np.ndarray:
    """:func:`roc_auc` on every resample at once: row ``r`` of ``idx`` lists its cases.

    The cases are sorted by score once; a resample is then only how often it draws each case,
    so the Mann-Whitney count of each resample is a cumulative sum over the sorted cases (ties
    share one group and count one half), at ``O(n_resamples x n_cases)`` in numpy instead of a
    rank per resample in Python. The values are :func:`roc_auc` of ``(y_true[idx[r]],
    y_score[idx[r]])`` to the last bit: both divide the same exact half-integer count by the
    same integer.

    Args:
        y_true: ``(n_cases,)`` labels in {0, 1}.
        y_score: ``(n_cases,)`` finite scores.
        idx: ``(n_resamples, k)`` case indices.
        keep: optional ``(n_cases,)`` bool; cases outside it are left out of every resample
            (the AUC of one group on the resampled cases).

    Returns:
        ``(n_resamples,)`` AUCs; NaN (one ``RuntimeWarning``) where a resample holds one class.
    """
    y, (s,) = _binary_inputs(y_true, y_score=y_score)
    order = np.argsort(s, kind="stable")
    ranked = s[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    place = np.empty_like(order)
    place[order] = np.arange(order.size)  # a case's position in score order
    # (n_resamples, n_cases) draws of each case, counted in score order (no column gather)
    drawn = case_counts(place[np.asarray(idx, np.int64)], y.size)
    if keep is not None:
        drawn = drawn * np.asarray(keep, bool)[order][None, :]
    positive = y[order]
    pos = drawn * positive
    neg = drawn - pos
    if starts.size < ranked.size:  # tied scores: one group per distinct score
        pos, neg = np.add.reduceat(pos, starts, axis=1), np.add.reduceat(neg, starts, axis=1)
        below = np.cumsum(neg, axis=1) - neg
        twice_u = (pos * (2 * below + neg)).sum(axis=1)  # 2 x Mann-Whitney U: an exact integer
    else:  # one case per column, positive (no negative in it) or negative: the same integer
        twice_u = 2 * (pos * np.cumsum(neg, axis=1)).sum(axis=1)
    pairs = 2 * pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = np.where(pairs > 0, twice_u / np.where(pairs > 0, pairs, 1), np.nan)
    if np.isnan(auc).any():
        warn_undefined(
            f"ROC AUC is undefined on {int(np.isnan(auc).sum())} of {auc.size} resamples that "
            "hold one class only; returning NaN there"
        )
    return auc.astype(np.float64)


def _delong_components(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs ``(k,)`` and DeLong covariance ``(k, k)`` of ``k`` score rows ``(k, n_samples)``.

    Sun & Xu 2014's fast algorithm: the structural components (placement values) come from three
    midrank computations, O(n log n) instead of DeLong's O(m n) pairwise kernel.
    """
    pos, neg = scores[:, y], scores[:, ~y]
    m, n = pos.shape[1], neg.shape[1]
    ranks_pos = rankdata(pos, axis=1)
    ranks_neg = rankdata(neg, axis=1)
    ranks_all = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    aucs = _auc_from_ranks(ranks_all[:, :m], m, n)
    # Placement of each positive: fraction of negatives it outscores (ties count one half).
    v_pos = (ranks_all[:, :m] - ranks_pos) / n
    # Placement of each negative: fraction of positives that outscore it.
    v_neg = 1.0 - (ranks_all[:, m:] - ranks_neg) / m
    cov = np.atleast_2d(np.cov(v_pos)) / m + np.atleast_2d(np.cov(v_neg)) / n
    return aucs, cov


def _too_few(y: np.ndarray, what: str) -> bool:
    """True (and warn) when a class has fewer than 2 samples: DeLong's variance needs 2 each."""
    n_pos = int(np.count_nonzero(y))
    if min(n_pos, y.size - n_pos) < 2:
        warn_undefined(
            f"{what} needs at least 2 positives and 2 negatives "
            f"({n_pos} positives, {y.size - n_pos} negatives); returning NaN"
        )
        return True
    return False


def delong_ci(y_true, y_score, *, alpha: float = 0.05) -> tuple[float, float]:
    """Normal confidence interval of the ROC AUC with DeLong's variance.

    ``AUC -/+ z_{1-alpha/2} * sqrt(Var)``, with the variance of DeLong et al. computed by the
    O(n log n) midrank algorithm of Sun & Xu; the interval is clipped to [0, 1].

    Args:
        y_true: ``(n_samples,)`` labels in {0, 1}.
        y_score: ``(n_samples,)`` finite scores.
        alpha: 1 - confidence level (0.05 gives a 95 % interval).

    Returns:
        ``(low, high)``; ``(nan, nan)`` with a ``RuntimeWarning`` when a class has fewer than
        2 samples.

    References: DeLong, DeLong & Clarke-Pearson, Biometrics 1988; Sun & Xu, IEEE Signal
    Processing Letters 2014.
    """
    alpha = check_fraction(alpha, "alpha")
    y, (s,) = _binary_inputs(y_true, y_score=y_score)
    if _one_class(y, "The DeLong interval") or _too_few(y, "The DeLong interval"):
        return float("nan"), float("nan")
    aucs, cov = _delong_components(y, s[None, :])
    half = norm.ppf(1 - alpha / 2) * math.sqrt(max(float(cov[0, 0]), 0.0))
    auc = float(aucs[0])
    return float(max(0.0, auc - half)), float(min(1.0, auc + half))


def delong_test(y_true, y_score_a, y_score_b) -> float:
    """Two-sided p-value of DeLong's test that two correlated AUCs on the same cases are equal.

    ``z = (AUC_a - AUC_b) / sqrt(Var_a + Var_b - 2 Cov_ab)`` with DeLong's covariance (Sun & Xu
    fast algorithm), ``p = 2 (1 - Phi(|z|))``. Identical scores give p = 1. When the variance of the
    difference is 0 (both models separate the classes perfectly, in either direction), p is 1 if
    the AUCs are equal and 0 otherwise.

    Args:
        y_true: ``(n_samples,)`` labels in {0, 1}.
        y_score_a, y_score_b: ``(n_samples,)`` scores of the two models on the same cases.

    Returns:
        p-value in [0, 1]; NaN with a ``RuntimeWarning`` when a class has fewer than 2 samples.

    Reference: DeLong, DeLong & Clarke-Pearson, Biometrics 1988; Sun & Xu 2014.
    """
    y, (a, b) = _binary_inputs(y_true, y_score_a=y_score_a, y_score_b=y_score_b)
    if _one_class(y, "DeLong's test") or _too_few(y, "DeLong's test"):
        return float("nan")
    if np.array_equal(a, b):
        return 1.0
    aucs, cov = _delong_components(y, np.stack([a, b]))
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    if not var > 0:
        return 1.0 if diff == 0 else 0.0
    return float(2 * norm.sf(abs(diff) / math.sqrt(var)))


_RULE_FORMS = "'youden', ('sensitivity', target) or ('specificity', target) with 0 < target <= 1"


def _parse_rule(rule) -> tuple[str, float]:
    if isinstance(rule, str) and rule == "youden":
        return "youden", float("nan")
    if (
        isinstance(rule, tuple | list)
        and len(rule) == 2
        and rule[0] in ("sensitivity", "specificity")
    ):
        target = rule[1]
        if (
            isinstance(target, int | float | np.integer | np.floating)
            and not isinstance(target, bool)
            and 0 < target <= 1
        ):
            return rule[0], float(target)
    raise ValueError(f"rule must be {_RULE_FORMS}; got {rule!r}")


def operating_point(y_true, y_score, *, rule) -> float:
    """Decision threshold chosen by ``rule``; a case is predicted positive when score >= threshold.

    The threshold is chosen on validation predictions and then applied unchanged to test, as the
    clinical operating points of Gulshan et al. 2016 (high-sensitivity / high-specificity points
    set on the development set) and the Youden point of Lakhani & Sundaram 2017. Candidates are
    the distinct values of ``y_score``.

    Rules:
        ``"youden"``: maximise sensitivity + specificity - 1; ties go to the highest threshold.
        ``("sensitivity", t)``: the highest threshold whose sensitivity is >= t.
        ``("specificity", t)``: the lowest threshold whose specificity is >= t; when no distinct
        score reaches t (negatives tied at the top score), ``inf`` (nothing positive) with a
        ``RuntimeWarning``.

    Args:
        y_true: ``(n_samples,)`` labels in {0, 1}.
        y_score: ``(n_samples,)`` finite scores.
        rule: one of the forms above.

    Returns:
        The threshold; NaN with a ``RuntimeWarning`` when ``y_true`` holds one class only.

    References: Gulshan et al., JAMA 2016; Lakhani & Sundaram, Radiology 2017; Youden, Cancer 1950.
    """
    kind, target = _parse_rule(rule)
    y, (s,) = _binary_inputs(y_true, y_score=y_score)
    if _one_class(y, "An operating point"):
        return float("nan")
    candidates = np.unique(s)
    pos, neg = np.sort(s[y]), np.sort(s[~y])
    n_pos, n_neg = pos.size, neg.size
    # Integer counts at each candidate t: positives with score >= t, negatives with score < t.
    tp = n_pos - np.searchsorted(pos, candidates, side="left")
    tn = np.searchsorted(neg, candidates, side="left")
    if kind == "youden":
        # J * n_pos * n_neg in integers, so that ties are exact rather than float-rounded.
        j = tp * n_neg + tn * n_pos
        return float(candidates[np.flatnonzero(j == j.max())[-1]])
    if kind == "sensitivity":
        # Sensitivity falls as the threshold rises; the lowest candidate always has sensitivity 1.
        return float(candidates[np.flatnonzero(tp / n_pos >= target)[-1]])
    ok = np.flatnonzero(tn / n_neg >= target)
    if ok.size == 0:
        warn_undefined(
            f"no score value reaches specificity {target} (best {tn.max() / n_neg:.4f}, negatives "
            "tie with the top score); returning inf, which predicts every case negative"
        )
        return float("inf")
    return float(candidates[ok[0]])


def roc_curve(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1).

    Args:
        y_true: ``(n_samples,)`` labels in {0, 1}.
        y_score: ``(n_samples,)`` scores, higher = more likely positive.

    Returns:
        ``(fpr, tpr)``, each ``(n_thresholds + 1,)``; a class that is absent gives rates of 0.
    """
    y = np.asarray(y_true).astype(np.int64)
    s = np.asarray(y_score, np.float64)
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]  # the last case of each distinct score
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    pos, neg = max(int(y.sum()), 1), max(int(y.size - y.sum()), 1)
    return np.r_[0.0, fp / neg], np.r_[0.0, tp / pos]
