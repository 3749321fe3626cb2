"""Uncertainty of summary scores: bootstrap intervals over cases, paired comparisons, Holm's
correction, and bootstrap rank intervals for leaderboards.

Resampling is vectorised: one ``(n_resamples, n_cases)`` index matrix per call (built in chunks
only when it would exceed ``_MAX_DRAWN`` elements), drawn from ``np.random.default_rng(seed)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
from scipy.stats import rankdata

from medbench.metrics._validation import (
    check_1d,
    check_consistent_length,
    check_fraction,
    check_positive_int,
    warn_undefined,
)

__all__ = [
    "bootstrap_ci",
    "bootstrap_statistic",
    "case_counts",
    "paired_bootstrap",
    "PairedResult",
    "holm",
    "rank_intervals",
    "resample_indices",
]

Statistic = Callable[..., np.ndarray]

# Largest number of resampled values gathered at once (128 MiB of float64).
_MAX_DRAWN = 1 << 24


def resample_indices(
    n_cases: int, *, n_resamples: int = 2000, seed: int = 0, width: int = 1
) -> Iterator[np.ndarray]:
    """The bootstrap's resampled case indices, in chunks of rows.

    Together the chunks are the ``(n_resamples, n_cases)`` matrix
    ``np.random.default_rng(seed).integers(0, n_cases, (n_resamples, n_cases))`` (the same
    numbers as ``n_resamples`` draws of ``n_cases`` in a row); a chunk holds at most
    ``_MAX_DRAWN / width`` values, ``width`` being the values computed per resampled case. Every
    bootstrap in medbench (intervals, paired tests, rank intervals) resamples from here, so the
    same seed means the same resamples everywhere.
    """
    n_resamples = check_positive_int(n_resamples, "n_resamples")
    rng = np.random.default_rng(seed)
    rows = max(1, _MAX_DRAWN // (max(n_cases, 1) * width))
    for start in range(0, n_resamples, rows):
        yield rng.integers(0, n_cases, size=(min(rows, n_resamples - start), n_cases))


def case_counts(idx: np.ndarray, n_cases: int) -> np.ndarray:
    """``(n_resamples, n_cases)``: how often each case is drawn in each row of ``idx``."""
    idx = np.asarray(idx, np.int64)
    rows = idx.shape[0]
    offsets = (idx + n_cases * np.arange(rows)[:, None]).ravel()
    return np.bincount(offsets, minlength=rows * n_cases).reshape(rows, n_cases)


def _resampled(
    n: int, n_resamples: int, seed: int, per_case_width: int, compute: Callable
) -> np.ndarray:
    """Concatenate ``compute(idx)`` over the chunks of :func:`resample_indices`."""
    chunks = resample_indices(n, n_resamples=n_resamples, seed=seed, width=per_case_width)
    return np.concatenate([compute(idx) for idx in chunks], axis=0)


def bootstrap_statistic(
    statistic: Callable[[np.ndarray], float],
    n_cases: int,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    batched: bool = False,
) -> np.ndarray:
    """A whole-sample statistic on each bootstrap resample of the cases.

    For statistics that are not a mean of per-case values (AUC, kappa, a ratio of sums):
    ``statistic(idx)`` is called on each row of :func:`resample_indices`; with ``batched`` it is
    called on each chunk of rows and returns one value per row (a vectorised statistic such as
    :func:`medbench.metrics.resampled_roc_auc`).

    Args:
        statistic: maps ``(n_cases,)`` case indices to a float (NaN when undefined).
        n_cases: number of cases resampled.
        n_resamples, seed: as in :func:`bootstrap_ci`.

    Returns:
        ``(n_resamples,)`` float64 values (NaN where the statistic is undefined).

    Reference: Efron & Tibshirani 1993 (nonparametric bootstrap).
    """
    if batched:
        # a vectorised statistic holds a few (rows, n_cases) arrays at once: smaller chunks
        return _resampled(
            n_cases, n_resamples, seed, 4, lambda idx: np.asarray(statistic(idx), float)
        )
    return _resampled(
        n_cases, n_resamples, seed, 1, lambda idx: np.array([statistic(row) for row in idx], float)
    )


def _values(x, name: str) -> np.ndarray:
    arr = check_1d(x, name)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _percentile_interval(draws: np.ndarray, alpha: float) -> tuple[float, float]:
    low, high = np.percentile(draws, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def _check_options(n_resamples: int, alpha: float) -> tuple[int, float]:
    return check_positive_int(n_resamples, "n_resamples"), check_fraction(alpha, "alpha")


def bootstrap_ci(
    per_case,
    *,
    statistic: Statistic = np.nanmean,
    n_resamples: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of a statistic of per-case scores.

    NaN cases (undefined values) are dropped first; cases are resampled with replacement and
    ``statistic(samples, axis=1)`` is applied to all resamples at once.

    Args:
        per_case: ``(n_cases,)`` scores, NaN = undefined.
        statistic: reduction accepting ``axis=1`` (``np.nanmean``, ``np.median``, ...).
        n_resamples: number of bootstrap resamples.
        alpha: 1 - confidence level.
        seed: seed of ``np.random.default_rng``.

    Returns:
        ``(low, high)``; ``(nan, nan)`` with a ``RuntimeWarning`` when fewer than 2 cases are
        defined.

    Reference: Efron & Tibshirani, An Introduction to the Bootstrap, 1993 (percentile method).
    """
    n_resamples, alpha = _check_options(n_resamples, alpha)
    values = _values(per_case, "per_case")
    values = values[~np.isnan(values)]
    if values.size < 2:
        warn_undefined(
            f"a bootstrap interval needs at least 2 defined cases; got {values.size}; returning NaN"
        )
        return float("nan"), float("nan")
    draws = _resampled(values.size, n_resamples, seed, 1, lambda i: statistic(values[i], axis=1))
    return _percentile_interval(draws, alpha)


class PairedResult(NamedTuple):
    """Paired bootstrap comparison of two entries on the same cases (a - b)."""

    difference: float
    ci_low: float
    ci_high: float
    p_value: float


def paired_bootstrap(
    per_case_a,
    per_case_b,
    *,
    statistic: Statistic = np.nanmean,
    n_resamples: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> PairedResult:
    """Paired bootstrap of ``statistic(a) - statistic(b)`` over the same cases.

    Cases where either score is NaN are dropped; the remaining cases are resampled jointly (the
    same indices for a and b), which keeps the between-case correlation of the two entries. The
    interval is the percentile interval of the resampled differences d*. The two-sided p-value
    for "no difference" is

        p = min(1, 2 * min(P(d* <= 0), P(d* >= 0))),  P(.) = (count + 1) / (n_resamples + 1),

    the +1 making p > 0 (the observed data counts as one resample). Identical inputs give
    difference 0 and p = 1.

    Args:
        per_case_a, per_case_b: ``(n_cases,)`` scores of two entries on the same cases.
        statistic: reduction accepting ``axis=1``.
        n_resamples, alpha, seed: as in :func:`bootstrap_ci`.

    Returns:
        :class:`PairedResult`; all NaN with a ``RuntimeWarning`` when fewer than 2 cases are
        defined for both.

    Reference: Efron & Tibshirani 1993, ch. 15-16 (bootstrap tests); Davison & Hinkley 1997 for
    the +1 correction.
    """
    n_resamples, alpha = _check_options(n_resamples, alpha)
    a = _values(per_case_a, "per_case_a")
    b = _values(per_case_b, "per_case_b")
    check_consistent_length(per_case_a=a, per_case_b=b)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if a.size < 2:
        warn_undefined(
            f"a paired bootstrap needs at least 2 cases defined for both entries; got {a.size}; "
            "returning NaN"
        )
        return PairedResult(float("nan"), float("nan"), float("nan"), float("nan"))
    difference = float(statistic(a[None, :], axis=1)[0] - statistic(b[None, :], axis=1)[0])
    draws = _resampled(
        a.size,
        n_resamples,
        seed,
        2,
        lambda i: statistic(a[i], axis=1) - statistic(b[i], axis=1),
    )
    low, high = _percentile_interval(draws, alpha)
    below = (np.count_nonzero(draws <= 0) + 1) / (n_resamples + 1)
    above = (np.count_nonzero(draws >= 0) + 1) / (n_resamples + 1)
    return PairedResult(difference, low, high, float(min(1.0, 2 * min(below, above))))


def holm(p_values) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values (family-wise error control).

    With the m defined p-values sorted ascending, ``adj_(k) = max_{j <= k} min(1, (m - j + 1)
    p_(j))``; adjusted values are monotone in the raw ones and capped at 1. NaN entries stay NaN
    and do not count in m.

    Args:
        p_values: ``(m,)`` p-values in [0, 1] (NaN allowed).

    Returns:
        ``(m,)`` adjusted p-values, in the input order.

    Reference: Holm, Scandinavian Journal of Statistics 1979.
    """
    if np.size(p_values) == 0:  # an empty family needs no correction
        return np.empty(0)
    p = _values(p_values, "p_values")
    defined = ~np.isnan(p)
    if np.any((p[defined] < 0) | (p[defined] > 1)):
        raise ValueError(
            f"p_values must lie in [0, 1]; got values in [{p[defined].min():g}, "
            f"{p[defined].max():g}]"
        )
    out = np.full(p.shape, np.nan)
    values = p[defined]
    order = np.argsort(values, kind="stable")
    m = values.size
    stepped = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * values[order]))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    out[defined] = adjusted
    return out


def _nanmean_rows(matrix: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``(len(idx), n_entries)`` nan-means of the resampled rows of ``matrix``."""
    with warnings.catch_warnings():
        # An entry undefined on every resampled case has mean NaN; it is ranked last below.
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(matrix[idx], axis=1)


def rank_intervals(
    per_case_matrix,
    *,
    higher_is_better: bool = True,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bootstrap rank intervals of leaderboard entries (rank stability).

    Cases are resampled with replacement (the same cases for every entry); on each resample each
    entry's mean (NaN-mean) is computed and entries are ranked, 1 = best, ties sharing the
    smallest rank ("min"), an entry with no defined case ranked last. The interval of an entry is
    the ``alpha/2`` and ``1 - alpha/2`` percentiles of its ranks, taken as observed ranks
    (``method="lower"`` / ``"higher"``), so they are integers and cover at least 1 - alpha.

    Args:
        per_case_matrix: ``(n_cases, n_entries)`` per-case scores, NaN = undefined.
        higher_is_better: False for errors and distances (lower ranks first).
        n_resamples, alpha, seed: as in :func:`bootstrap_ci`.

    Returns:
        ``(low, high, ranks)``: ``(n_entries,)`` int arrays and the ``(n_resamples, n_entries)``
        int rank matrix.

    Reference: Wiesenfarth et al., Scientific Reports 2021 (challengeR, bootstrap ranking).
    """
    n_resamples, alpha = _check_options(n_resamples, alpha)
    matrix = np.asarray(per_case_matrix)
    if matrix.ndim != 2 or matrix.shape[0] < 1 or matrix.shape[1] < 1:
        raise ValueError(
            f"per_case_matrix must have shape (n_cases, n_entries) with both >= 1; got shape "
            f"{matrix.shape}"
        )
    if matrix.dtype == bool or not np.issubdtype(matrix.dtype, np.number):
        raise ValueError(f"per_case_matrix must be numeric; got dtype {matrix.dtype}")
    matrix = matrix.astype(np.float64)
    n_cases, n_entries = matrix.shape
    means = _resampled(n_cases, n_resamples, seed, n_entries, lambda i: _nanmean_rows(matrix, i))
    # Rank on a "smaller is better" key; an undefined mean becomes +inf, i.e. last.
    key = -means if higher_is_better else means
    key = np.where(np.isnan(key), np.inf, key)
    ranks = rankdata(key, method="min", axis=1).astype(np.int64)
    low = np.percentile(ranks, 100 * alpha / 2, axis=0, method="lower").astype(np.int64)
    high = np.percentile(ranks, 100 * (1 - alpha / 2), axis=0, method="higher").astype(np.int64)
    return low, high, ranks
