"""The vectorised bootstrap statistics equal their one-resample-at-a-time definitions exactly."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from medbench import metrics as M


def _looped(fn, idx, *arrays):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.array([fn(*(a[row] for a in arrays)) for row in idx])


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def test_case_counts_count_each_draw():
    idx = np.array([[0, 0, 2], [1, 2, 2], [2, 2, 2]])
    assert M.case_counts(idx, 4).tolist() == [[2, 0, 1, 0], [0, 1, 2, 0], [0, 0, 3, 0]]


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("n", [4, 31, 500])
def test_resampled_auc_is_roc_auc_of_each_resample_to_the_bit(n, tied):
    rng = np.random.default_rng(n)
    y = (rng.random(n) < 0.3).astype(np.int64)
    y[:2] = [0, 1]
    s = rng.random(n)  # untied: each case its own group (no reduceat)
    s = np.round(s, 1) if tied else s  # coarse scores: many ties within and across classes
    idx = rng.integers(0, n, (400, n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fast = M.resampled_roc_auc(y, s, idx)
    assert _same_bits(fast, _looped(M.roc_auc, idx, y, s))


def test_resampled_auc_is_nan_with_a_warning_on_one_class_resamples():
    y = np.array([0, 0, 1])
    s = np.array([0.1, 0.2, 0.9])
    idx = np.array([[0, 1, 1], [0, 2, 1], [2, 2, 2]])
    with pytest.warns(RuntimeWarning, match="2 of 3 resamples"):
        auc = M.resampled_roc_auc(y, s, idx)
    assert np.isnan(auc[0]) and np.isnan(auc[2]) and auc[1] == 1.0


def test_resampled_auc_keep_restricts_every_resample_to_a_group():
    rng = np.random.default_rng(7)
    y, s = rng.integers(0, 2, 60), rng.random(60)
    group = np.arange(60) % 3 == 0
    idx = rng.integers(0, 60, (50, 60))
    expected = _looped(lambda yy, ss, gg: M.roc_auc(yy[gg], ss[gg]), idx, y, s, group)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert _same_bits(M.resampled_roc_auc(y, s, idx, keep=group), expected)


def test_resampled_multiclass_auc_is_multiclass_auc_of_each_resample_to_the_bit():
    rng = np.random.default_rng(3)
    n, k = 90, 5
    y = rng.integers(0, k, n)
    p = np.round(rng.dirichlet(np.ones(k), n), 2)
    idx = rng.integers(0, n, (300, n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fast = M.resampled_multiclass_auc(y, p, idx)
    assert _same_bits(fast, _looped(M.multiclass_auc, idx, y, p))


def test_batched_bootstrap_statistic_is_the_looped_one():
    rng = np.random.default_rng(11)
    y, s = rng.integers(0, 2, 80), rng.random(80)
    looped = M.bootstrap_statistic(lambda i: M.roc_auc(y[i], s[i]), 80, n_resamples=300, seed=4)
    batched = M.bootstrap_statistic(
        lambda idx: M.resampled_roc_auc(y, s, idx), 80, n_resamples=300, seed=4, batched=True
    )
    assert _same_bits(looped, batched)
