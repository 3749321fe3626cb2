"""Calibration of binary probabilities: expected calibration error and Brier score."""

from __future__ import annotations

import numpy as np

from medbench.metrics._validation import (
    check_binary_target,
    check_consistent_length,
    check_positive_int,
    check_probabilities,
)

__all__ = ["N_BINS", "brier_score", "calibration_bins", "expected_calibration_error"]


def _binary_probabilities(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y = check_binary_target(y_true)
    p = check_probabilities(y_score)
    check_consistent_length(y_true=y, y_score=p)
    return y, p


N_BINS = 15  # ECE and the reliability diagram share these bins


def calibration_bins(y_score, *, n_bins: int = N_BINS) -> np.ndarray:
    """The bin of each probability: ``b`` with ``edges[b] <= p < edges[b + 1]`` (1.0 in the last).

    The edges are ``b / n_bins`` themselves, found with ``searchsorted``: ``floor(p * n_bins)``
    puts a score on an edge into the bin below it (0.29 * 100 = 28.999999999999996).
    """
    edges = np.arange(n_bins + 1) / n_bins
    bins = np.searchsorted(edges, np.asarray(y_score, np.float64), side="right") - 1
    return np.clip(bins, 0, n_bins - 1)


def expected_calibration_error(y_true, y_score, *, n_bins: int = N_BINS) -> float:
    """Expected calibration error of the positive-class probability (lower is better).

    Definition: split [0, 1] into ``n_bins`` equal-width bins ``[b/B, (b+1)/B)`` (the last bin
    also holds 1.0). For the cases in bin b, ``freq_b`` is the fraction of positives and
    ``conf_b`` the mean of ``y_score``; then

        ECE = sum_b (n_b / n) * |freq_b - conf_b|        (empty bins contribute 0).

    This is the reliability-diagram ECE of the positive-class probability (Naeini et al. 2015),
    not the top-label "confidence vs accuracy" ECE of Guo et al. 2017, which folds p < 0.5 onto
    1 - p; the two differ for binary tasks.

    Args:
        y_true: ``(n_samples,)`` labels in {0, 1}.
        y_score: ``(n_samples,)`` probabilities P(positive) in [0, 1].
        n_bins: number of equal-width bins B.

    Returns:
        ECE in [0, 1].

    References: Naeini, Cooper & Hauskrecht, AAAI 2015; Guo et al., ICML 2017.
    """
    n_bins = check_positive_int(n_bins, "n_bins")
    y, p = _binary_probabilities(y_true, y_score)
    bins = calibration_bins(p, n_bins=n_bins)
    positives = np.bincount(bins, weights=y.astype(np.float64), minlength=n_bins)
    confidence = np.bincount(bins, weights=p, minlength=n_bins)
    # |sum_b(y) - sum_b(p)| / n equals (n_b / n) |freq_b - conf_b| and needs no division by n_b.
    return float(np.abs(positives - confidence).sum() / y.size)


def brier_score(y_true, y_score) -> float:
    """Brier score: mean squared difference between P(positive) and the 0/1 label (lower is
    better). Equals ``sklearn.metrics.brier_score_loss`` for binary labels.

    Args:
        y_true: ``(n_samples,)`` labels in {0, 1}.
        y_score: ``(n_samples,)`` probabilities P(positive) in [0, 1].

    Reference: Brier, Monthly Weather Review 1950.
    """
    y, p = _binary_probabilities(y_true, y_score)
    return float(np.mean((p - y) ** 2))
