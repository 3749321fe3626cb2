"""Bootstrap intervals, paired comparisons, Holm's correction and rank intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medbench import metrics as M
from medbench.metrics import statistics as S

# --- bootstrap_ci --------------------------------------------------------------------------------


def _bootstrap_loop(values, statistic, n_resamples, alpha, seed):
    """The same draws as bootstrap_ci, one resample at a time."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(n_resamples, values.size))
    draws = [statistic(values[row]) for row in idx]
    return tuple(np.percentile(draws, [100 * alpha / 2, 100 * (1 - alpha / 2)]))


@pytest.mark.parametrize("statistic", [np.nanmean, np.median])
def test_bootstrap_ci_equals_a_loop_over_resamples(statistic):
    values = np.random.default_rng(0).random(50)
    got = M.bootstrap_ci(values, statistic=statistic, n_resamples=300, alpha=0.1, seed=3)
    assert got == pytest.approx(_bootstrap_loop(values, statistic, 300, 0.1, 3))


def test_bootstrap_ci_of_a_mean_is_close_to_the_normal_interval():
    values = np.random.default_rng(1).normal(loc=2.0, scale=1.0, size=1000)
    low, high = M.bootstrap_ci(values)
    half = 1.96 * values.std(ddof=1) / math.sqrt(values.size)
    assert low < values.mean() < high
    assert low == pytest.approx(values.mean() - half, abs=0.01)
    assert high == pytest.approx(values.mean() + half, abs=0.01)


def test_bootstrap_ci_is_seeded():
    values = np.random.default_rng(2).random(40)
    assert M.bootstrap_ci(values, seed=5) == M.bootstrap_ci(values, seed=5)
    assert M.bootstrap_ci(values, seed=5) != M.bootstrap_ci(values, seed=6)


def test_bootstrap_ci_drops_nan_cases():
    values = np.random.default_rng(3).random(30)
    with_nan = np.concatenate([values, [np.nan, np.nan]])
    assert M.bootstrap_ci(with_nan) == M.bootstrap_ci(values)


def test_bootstrap_ci_chunked_draws_equal_one_matrix(monkeypatch):
    values = np.random.default_rng(4).random(100)
    whole = M.bootstrap_ci(values, n_resamples=500)
    monkeypatch.setattr(S, "_MAX_DRAWN", 700)  # 7 resamples per chunk
    assert M.bootstrap_ci(values, n_resamples=500) == whole


def test_bootstrap_ci_needs_two_defined_cases():
    with pytest.warns(RuntimeWarning, match="at least 2 defined cases; got 1"):
        assert all(map(math.isnan, M.bootstrap_ci([0.5, np.nan])))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_resamples": 0}, r"n_resamples must be a positive integer; got 0"),
        ({"n_resamples": 10.5}, r"n_resamples must be a positive integer; got 10.5"),
        ({"alpha": 1.0}, r"alpha must be a number in \(0, 1\); got 1.0"),
    ],
)
def test_bootstrap_ci_option_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        M.bootstrap_ci([0.1, 0.2, 0.3], **kwargs)


def test_bootstrap_ci_input_errors():
    with pytest.raises(
        ValueError, match=r"per_case must be 1-D with shape \(n_samples,\); got shape \(2, 2\)"
    ):
        M.bootstrap_ci(np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"per_case must be numeric; got dtype <U1"):
        M.bootstrap_ci(["a", "b"])


# --- paired_bootstrap ----------------------------------------------------------------------------


def test_paired_bootstrap_identical_inputs():
    values = np.random.default_rng(5).random(60)
    result = M.paired_bootstrap(values, values.copy())
    assert result == M.PairedResult(0.0, 0.0, 0.0, 1.0)


def test_paired_bootstrap_detects_a_consistent_improvement():
    rng = np.random.default_rng(6)
    b = rng.random(200)
    a = b + 0.05 + 0.02 * rng.normal(size=200)  # better on almost every case
    result = M.paired_bootstrap(a, b, n_resamples=999)
    assert result.difference == pytest.approx(np.mean(a - b))
    assert 0 < result.ci_low < result.difference < result.ci_high
    # Every resampled difference is > 0: p = 2 * (0 + 1) / (999 + 1), never exactly 0.
    assert result.p_value == pytest.approx(2 / 1000)
    assert M.paired_bootstrap(b, a, n_resamples=999).difference == pytest.approx(-result.difference)


def test_paired_bootstrap_no_difference_has_large_p():
    rng = np.random.default_rng(7)
    truth = rng.random(300)
    a = truth + 0.1 * rng.normal(size=300)
    b = truth + 0.1 * rng.normal(size=300)
    result = M.paired_bootstrap(a, b)
    assert result.ci_low < 0 < result.ci_high
    assert result.p_value > 0.05


def test_paired_bootstrap_p_value_definition():
    rng = np.random.default_rng(8)
    a, b = rng.random(40), rng.random(40)
    result = M.paired_bootstrap(a, b, n_resamples=400, seed=2)
    idx = np.random.default_rng(2).integers(0, 40, size=(400, 40))
    draws = a[idx].mean(axis=1) - b[idx].mean(axis=1)
    below = (np.sum(draws <= 0) + 1) / 401
    above = (np.sum(draws >= 0) + 1) / 401
    assert result.p_value == pytest.approx(min(1.0, 2 * min(below, above)))
    assert (result.ci_low, result.ci_high) == pytest.approx(
        tuple(np.percentile(draws, [2.5, 97.5]))
    )


def test_paired_bootstrap_drops_cases_undefined_in_either():
    rng = np.random.default_rng(9)
    a, b = rng.random(30), rng.random(30)
    a_nan, b_nan = np.append(a, [np.nan, 0.5]), np.append(b, [0.5, np.nan])
    assert M.paired_bootstrap(a_nan, b_nan) == M.paired_bootstrap(a, b)


def test_paired_bootstrap_errors_and_nan():
    with pytest.raises(
        ValueError,
        match=r"per_case_a and per_case_b have inconsistent numbers of samples: \[3, 2\]",
    ):
        M.paired_bootstrap([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.warns(RuntimeWarning, match="at least 2 cases defined for both entries; got 1"):
        result = M.paired_bootstrap([0.1, np.nan, 0.3], [0.2, 0.1, np.nan])
    assert all(map(math.isnan, result))


# --- holm ----------------------------------------------------------------------------------------


def test_holm_hand_computed():
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; running max
    # makes the last 0.06.
    np.testing.assert_allclose(M.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_keeps_nan_and_is_monotone():
    adjusted = M.holm([0.5, np.nan, 0.2, 0.9])
    # m = 3 defined values: 0.2 * 3 = 0.6, 0.5 * 2 = 1.0, 0.9 * 1 -> max(1.0, 0.9) = 1.0.
    np.testing.assert_allclose(adjusted, [1.0, np.nan, 0.6, 1.0])
    p = np.random.default_rng(10).random(20) / 10
    adj = M.holm(p)
    order = np.argsort(p)
    assert np.all(np.diff(adj[order]) >= 0)
    assert np.all(adj >= p) and np.all(adj <= 1)
    assert M.holm([]).shape == (0,)
    np.testing.assert_array_equal(M.holm([np.nan]), [np.nan])


def test_holm_errors():
    with pytest.raises(
        ValueError, match=r"p_values must lie in \[0, 1\]; got values in \[0.1, 1.5\]"
    ):
        M.holm([0.1, 1.5])


# --- rank_intervals ------------------------------------------------------------------------------


def test_rank_intervals_separated_entries_have_fixed_ranks():
    rng = np.random.default_rng(11)
    # Entry 2 best, then 0, then 1, far apart relative to the noise.
    matrix = rng.normal(scale=0.01, size=(100, 3)) + np.array([0.5, 0.2, 0.9])
    low, high, ranks = M.rank_intervals(matrix, n_resamples=200)
    np.testing.assert_array_equal(low, [2, 3, 1])
    np.testing.assert_array_equal(high, [2, 3, 1])
    assert ranks.shape == (200, 3) and ranks.dtype == np.int64
    low, high, _ = M.rank_intervals(matrix, higher_is_better=False, n_resamples=200)
    np.testing.assert_array_equal(low, [2, 1, 3])


def test_rank_intervals_ties_share_the_minimum_rank():
    matrix = np.tile([0.3, 0.3, 0.1], (10, 1))
    low, high, ranks = M.rank_intervals(matrix, n_resamples=50)
    np.testing.assert_array_equal(low, [1, 1, 3])
    np.testing.assert_array_equal(high, [1, 1, 3])
    assert np.all(ranks[:, :2] == 1)


def test_rank_intervals_overlapping_entries_have_wide_intervals():
    rng = np.random.default_rng(12)
    matrix = rng.normal(size=(30, 2)) + np.array([0.0, 0.05])
    low, high, ranks = M.rank_intervals(matrix, n_resamples=500)
    np.testing.assert_array_equal(low, [1, 1])
    np.testing.assert_array_equal(high, [2, 2])
    # Percentile of ranks per entry, computed directly from the returned rank matrix.
    assert np.percentile(ranks[:, 0], 2.5, method="lower") == low[0]


def test_rank_intervals_undefined_entry_ranks_last():
    matrix = np.array([[0.1, np.nan, 0.3], [0.2, np.nan, 0.4]])
    low, high, _ = M.rank_intervals(matrix, n_resamples=20)
    np.testing.assert_array_equal(low, [2, 3, 1])
    np.testing.assert_array_equal(high, [2, 3, 1])
    low, _, _ = M.rank_intervals(matrix, higher_is_better=False, n_resamples=20)
    np.testing.assert_array_equal(low, [1, 3, 2])


def test_rank_intervals_errors():
    with pytest.raises(
        ValueError,
        match=r"per_case_matrix must have shape \(n_cases, n_entries\) with both >= 1; got shape \(3,\)",
    ):
        M.rank_intervals([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"per_case_matrix must be numeric; got dtype bool"):
        M.rank_intervals(np.ones((2, 2), bool))
