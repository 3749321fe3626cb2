"""Binary ranking, label-based and calibration metrics: tiny hand-computed cases, parity with
scikit-learn and with direct O(m n) formulas, NaN policies and error messages."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm, rankdata
from sklearn.metrics import (
    brier_score_loss,
    cohen_kappa_score,
    roc_auc_score,
)

from medbench import metrics as M

# --- helpers: independent O(m n) definitions -----------------------------------------------------


def _psi(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mann-Whitney kernel: 1 if positive x outscores negative y, 1/2 on a tie, else 0."""
    return (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])


def _delong_direct(y: np.ndarray, scores: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """AUCs and DeLong covariance straight from DeLong et al. 1988 (pairwise kernel)."""
    y = y.astype(bool)
    v10, v01, aucs = [], [], []
    for s in scores:
        kernel = _psi(s[y], s[~y])
        aucs.append(kernel.mean())
        v10.append(kernel.mean(axis=1))
        v01.append(kernel.mean(axis=0))
    m, n = int(y.sum()), int((~y).sum())
    cov = np.atleast_2d(np.cov(np.array(v10))) / m + np.atleast_2d(np.cov(np.array(v01))) / n
    return np.array(aucs), cov


def _tied_scores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, n)
    # Rounding to one decimal makes many ties between and within classes.
    return y, np.round(rng.random(n) + 0.4 * y, 1)


# --- roc_auc -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("y", "s", "expected"),
    [
        ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),
        ([0, 1], [0.5, 0.5], 0.5),  # a tie counts one half
        ([0, 0, 1, 1], [1, 2, 2, 3], 0.875),  # 1 + 1/2 + 1 + 1 of 4 pairs
        ([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], 1.0),
        ([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9], 0.0),
        ([True, False, True], [3, 1, 2], 1.0),
    ],
)
def test_roc_auc_hand_computed(y, s, expected):
    assert M.roc_auc(y, s) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_matches_sklearn_with_ties(seed):
    y, s = _tied_scores(np.random.default_rng(seed), 300)
    assert len(np.unique(s)) < 30  # the ties are really there
    assert M.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_roc_auc_one_class_is_nan_with_warning():
    with pytest.warns(RuntimeWarning, match="one class only"):
        assert math.isnan(M.roc_auc([1, 1, 1], [0.2, 0.5, 0.9]))


@pytest.mark.parametrize(
    ("y", "s", "message"),
    [
        (
            [0, 1, 1],
            [0.1, 0.2],
            r"y_true and y_score have inconsistent numbers of samples: \[3, 2\]",
        ),
        (
            [0, 1, 2],
            [0.1, 0.2, 0.3],
            r"y_true must be binary with values in \{0, 1\}; got values \[0, 1, 2\]",
        ),
        ([0, 1], [0.1, np.nan], r"y_score must be finite; got 1 NaN or infinite values"),
        ([0, 1], [0.1, np.inf], r"y_score must be finite"),
        (
            [[0, 1]],
            [[0.1, 0.2]],
            r"y_true must be 1-D with shape \(n_samples,\); got shape \(1, 2\)",
        ),
        ([], [], r"y_true must contain at least one sample; got 0"),
        ([0, 1], ["a", "b"], r"y_score must be numeric; got dtype <U1"),
    ],
)
def test_roc_auc_errors(y, s, message):
    with pytest.raises(ValueError, match=message):
        M.roc_auc(y, s)


# --- DeLong --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_delong_ci_matches_direct_pairwise_variance(seed):
    y, s = _tied_scores(np.random.default_rng(seed), 200)
    aucs, cov = _delong_direct(y, [s])
    half = norm.ppf(0.975) * math.sqrt(cov[0, 0])
    low, high = M.delong_ci(y, s)
    assert low == pytest.approx(aucs[0] - half, abs=1e-12)
    assert high == pytest.approx(aucs[0] + half, abs=1e-12)


def test_delong_ci_agrees_with_bootstrap_on_a_large_sample():
    rng = np.random.default_rng(1)
    n = 2000
    y = rng.integers(0, 2, n)
    s = rng.normal(size=n) + 1.0 * y
    low, high = M.delong_ci(y, s)
    # 2000 bootstrap AUCs at once: Mann-Whitney rank sums of each resample (scipy's midranks).
    idx = rng.integers(0, n, size=(2000, n))
    ranks = rankdata(s[idx], axis=1)
    pos = y[idx].astype(bool)
    m = pos.sum(axis=1)
    boots = ((ranks * pos).sum(axis=1) - m * (m + 1) / 2) / (m * (n - m))
    b_low, b_high = np.percentile(boots, [2.5, 97.5])
    assert low < M.roc_auc(y, s) < high
    # Large-sample agreement: differences of about 0.001 are typical.
    assert abs(low - b_low) < 0.005
    assert abs(high - b_high) < 0.005


def test_delong_ci_narrows_with_alpha_and_is_clipped():
    y, s = _tied_scores(np.random.default_rng(3), 100)
    wide, narrow = M.delong_ci(y, s, alpha=0.01), M.delong_ci(y, s, alpha=0.2)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]
    # Perfect separation: zero variance and an interval [1, 1], never above 1.
    assert M.delong_ci([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == (1.0, 1.0)
    low, high = M.delong_ci([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.7, 0.6, 0.8, 0.9])
    assert 0 <= low < high == 1.0


def test_delong_ci_undefined_cases_warn():
    with pytest.warns(RuntimeWarning, match="one class only"):
        assert all(map(math.isnan, M.delong_ci([0, 0, 0], [0.1, 0.2, 0.3])))
    with pytest.warns(RuntimeWarning, match="at least 2 positives and 2 negatives"):
        assert all(map(math.isnan, M.delong_ci([0, 0, 1], [0.1, 0.2, 0.3])))


@pytest.mark.parametrize("alpha", [0, 1, -0.1, 1.5, "0.05", True])
def test_delong_ci_rejects_bad_alpha(alpha):
    with pytest.raises(ValueError, match=r"alpha must be a number in \(0, 1\); got"):
        M.delong_ci([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], alpha=alpha)


def test_delong_test_matches_direct_covariance():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 150)
    a = np.round(rng.normal(size=150) + y, 1)
    b = np.round(a + rng.normal(size=150), 1)
    aucs, cov = _delong_direct(y, [a, b])
    z = (aucs[0] - aucs[1]) / math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert M.delong_test(y, a, b) == pytest.approx(2 * norm.sf(abs(z)), rel=1e-9)
    assert M.delong_test(y, a, b) == pytest.approx(M.delong_test(y, b, a), rel=1e-12)


def test_delong_test_detects_a_clearly_better_model():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 500)
    signal = rng.normal(size=500) + 2.0 * y
    good = signal + 0.3 * rng.normal(size=500)
    poor = signal + 3.0 * rng.normal(size=500)
    assert M.roc_auc(y, good) > M.roc_auc(y, poor)
    assert M.delong_test(y, good, poor) < 0.05


def test_delong_test_does_not_separate_equal_quality_models():
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 500)
    signal = rng.normal(size=500) + 1.0 * y
    a = signal + rng.normal(size=500)
    b = signal + rng.normal(size=500)
    assert M.delong_test(y, a, b) > 0.05


def test_delong_test_identical_and_degenerate():
    y = [0, 0, 1, 1, 0, 1]
    s = [0.1, 0.5, 0.4, 0.9, 0.3, 0.6]
    assert M.delong_test(y, s, s) == 1.0
    # Both separate perfectly, in opposite directions: zero variance, different AUCs.
    perfect = [0.1, 0.2, 0.8, 0.9, 0.3, 0.7]
    assert M.delong_test(y, perfect, [-v for v in perfect]) == 0.0
    with pytest.warns(RuntimeWarning, match="one class only"):
        assert math.isnan(M.delong_test([1, 1, 1], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1]))


def test_delong_test_length_error():
    with pytest.raises(
        ValueError,
        match=r"y_true and y_score_a and y_score_b have inconsistent numbers of samples: \[3, 3, 2\]",
    ):
        M.delong_test([0, 1, 1], [0.1, 0.2, 0.3], [0.1, 0.2])


# --- operating points ----------------------------------------------------------------------------

# Candidates 0.1 .. 0.9 give (sens, spec): 0.1 (1, 0), 0.2 (1, 1/3), 0.4 (1, 2/3),
# 0.6 (2/3, 2/3), 0.7 (2/3, 1), 0.9 (1/3, 1); Youden J ties at 0.4 and 0.7.
Y_OP = [0, 0, 0, 1, 1, 1]
S_OP = [0.1, 0.2, 0.6, 0.4, 0.7, 0.9]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("youden", 0.7),  # tie between 0.4 and 0.7 goes to the highest threshold
        (("sensitivity", 0.9), 0.4),
        (("sensitivity", 0.6), 0.7),
        (("sensitivity", 1.0), 0.4),
        (("specificity", 0.9), 0.7),
        (("specificity", 0.5), 0.4),
        (("specificity", 2 / 3), 0.4),  # exactly on target counts
        (["specificity", 0.9], 0.7),  # lists (from JSON/YAML) are accepted
    ],
)
def test_operating_point_hand_computed(rule, expected):
    assert M.operating_point(Y_OP, S_OP, rule=rule) == expected


def test_operating_point_thresholds_achieve_their_targets():
    rng = np.random.default_rng(7)
    y, s = _tied_scores(rng, 400)
    for target in (0.8, 0.9, 0.975):
        t = M.operating_point(y, s, rule=("sensitivity", target))
        sens, _ = M.sensitivity_specificity(y, s >= t)
        assert sens >= target
        # The next higher candidate would miss the target: t is the highest that works.
        higher = np.unique(s)[np.unique(s) > t]
        if higher.size:
            assert M.sensitivity_specificity(y, s >= higher[0])[0] < target
        t = M.operating_point(y, s, rule=("specificity", target))
        _, spec = M.sensitivity_specificity(y, s >= t)
        assert spec >= target
        lower = np.unique(s)[np.unique(s) < t]
        if lower.size:
            assert M.sensitivity_specificity(y, s >= lower[-1])[1] < target


def test_operating_point_youden_is_the_maximum():
    y, s = _tied_scores(np.random.default_rng(8), 300)
    t = M.operating_point(y, s, rule="youden")
    best = max(sum(M.sensitivity_specificity(y, s >= c)) for c in np.unique(s))
    assert sum(M.sensitivity_specificity(y, s >= t)) == pytest.approx(best)


def test_operating_point_unreachable_specificity_is_inf_with_warning():
    with pytest.warns(RuntimeWarning, match="no score value reaches specificity 1.0"):
        assert M.operating_point([0, 1, 0], [0.9, 0.5, 0.9], rule=("specificity", 1.0)) == math.inf


def test_operating_point_one_class_is_nan():
    with pytest.warns(RuntimeWarning, match="one class only"):
        assert math.isnan(M.operating_point([0, 0], [0.1, 0.2], rule="youden"))


@pytest.mark.parametrize(
    "rule",
    [
        "Youden",
        ("sensitivity",),
        ("sensitivity", 0),
        ("specificity", 1.5),
        ("ppv", 0.9),
        None,
        ("sensitivity", True),
    ],
)
def test_operating_point_bad_rule_lists_accepted_forms(rule):
    accepted = (
        r"rule must be 'youden', \('sensitivity', target\) or \('specificity', target\) "
        r"with 0 < target <= 1; got"
    )
    with pytest.raises(ValueError, match=accepted):
        M.operating_point(Y_OP, S_OP, rule=rule)


# --- sensitivity / specificity -------------------------------------------------------------------


def test_sensitivity_specificity_hand_computed():
    # TP = 2, FN = 1, TN = 1, FP = 2
    sens, spec = M.sensitivity_specificity([1, 1, 1, 0, 0, 0], [1, 1, 0, 1, 1, 0])
    assert (sens, spec) == (pytest.approx(2 / 3), pytest.approx(1 / 3))


def test_sensitivity_specificity_nan_policies():
    with pytest.warns(RuntimeWarning, match="sensitivity is undefined without positives"):
        sens, spec = M.sensitivity_specificity([0, 0], [0, 1])
    assert math.isnan(sens) and spec == 0.5
    with pytest.warns(RuntimeWarning, match="specificity is undefined without negatives"):
        sens, spec = M.sensitivity_specificity([1, 1], [0, 1])
    assert sens == 0.5 and math.isnan(spec)


def test_sensitivity_specificity_rejects_scores():
    with pytest.raises(
        ValueError, match=r"y_pred must be binary with values in \{0, 1\}; got values \[0.2, 0.7\]"
    ):
        M.sensitivity_specificity([0, 1], [0.2, 0.7])


# --- accuracy, recall, kappa ---------------------------------------------------------------------


def test_accuracy_from_labels_and_from_scores():
    assert M.accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    scores = [[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.1, 0.6, 0.3], [0.0, 0.1, 0.9]]
    assert M.accuracy([0, 1, 2, 2], scores) == 0.75
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[2, 3\]"):
        M.accuracy([0, 1], [0, 1, 1])


def test_per_class_recall_hand_computed_and_absent_class():
    recall = M.per_class_recall([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], n_classes=2)
    np.testing.assert_allclose(recall, [0.5, 2 / 3])
    with pytest.warns(RuntimeWarning, match=r"classes absent from y_true \[2\]"):
        recall = M.per_class_recall([0, 1], [0, 2], n_classes=3)
    assert recall[0] == 1.0 and recall[1] == 0.0 and math.isnan(recall[2])


def test_quadratic_weighted_kappa_hand_computed():
    # O = [[1, 1], [0, 2]], E = [[0.5, 1.5], [0.5, 1.5]], weights [[0, 1], [1, 0]]: 1 - 1 / 2.
    assert M.quadratic_weighted_kappa([0, 0, 1, 1], [0, 1, 1, 1], n_classes=2) == pytest.approx(0.5)
    assert M.quadratic_weighted_kappa([0, 1, 2, 3], [0, 1, 2, 3], n_classes=4) == 1.0
    # Reversed grades: maximal disagreement.
    assert M.quadratic_weighted_kappa([0, 4], [4, 0], n_classes=5) == pytest.approx(-1.0)


@pytest.mark.parametrize("seed", range(5))
def test_quadratic_weighted_kappa_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, 200)
    pred = np.clip(y + rng.integers(-2, 3, 200), 0, 4)
    expected = cohen_kappa_score(y, pred, weights="quadratic", labels=list(range(5)))
    assert M.quadratic_weighted_kappa(y, pred, n_classes=5) == pytest.approx(expected, abs=1e-12)


def test_quadratic_weighted_kappa_undefined_and_errors():
    with pytest.warns(RuntimeWarning, match="no expected disagreement"):
        assert math.isnan(M.quadratic_weighted_kappa([2, 2], [2, 2], n_classes=3))
    with pytest.raises(
        ValueError, match=r"y_pred must hold class labels in 0..2; got values \[3, 5\]"
    ):
        M.quadratic_weighted_kappa([0, 1, 2, 1], [0, 3, 5, 1], n_classes=3)
    with pytest.raises(ValueError, match=r"n_classes must be an integer >= 2; got 1"):
        M.quadratic_weighted_kappa([0], [0], n_classes=1)
    with pytest.raises(
        ValueError, match=r"y_true must hold integer class labels; got values \[0.5\]"
    ):
        M.quadratic_weighted_kappa([0.5, 1.0], [0, 1], n_classes=2)


# --- multi-class AUC -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_multiclass_auc_matches_sklearn_ovr_macro(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, 300)
    logits = rng.normal(size=(300, 5)) + 1.5 * np.eye(5)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    p = np.round(p, 2)  # ties within columns
    p = p / p.sum(axis=1, keepdims=True)
    expected = roc_auc_score(y, p, multi_class="ovr", average="macro")
    assert M.multiclass_auc(y, p) == pytest.approx(expected, abs=1e-12)
    per_class = [M.roc_auc(y == k, p[:, k]) for k in range(5)]
    assert M.multiclass_auc(y, p) == pytest.approx(np.mean(per_class), abs=1e-12)


def test_multiclass_auc_absent_class_and_errors():
    with pytest.warns(RuntimeWarning, match=r"undefined for classes \[2\]"):
        assert math.isnan(M.multiclass_auc([0, 1, 0], np.full((3, 3), 1 / 3)))
    with pytest.raises(
        ValueError,
        match=r"y_score must have shape \(n_samples, n_classes\) with n_classes >= 2; got shape \(3,\)",
    ):
        M.multiclass_auc([0, 1, 0], [0.1, 0.2, 0.3])
    with pytest.raises(
        ValueError, match=r"y_true must hold class labels in 0..1; got values \[2\]"
    ):
        M.multiclass_auc([0, 1, 2], np.full((3, 2), 0.5))


# --- calibration ---------------------------------------------------------------------------------


def test_ece_hand_computed():
    # Bin [0, 0.5): p 0.1, 0.3, no positives -> |0 - 0.4| * 2/4; bin [0.5, 1]: p 0.9, 0.8, both
    # positive -> |1 - 0.85| * 2/4.
    assert M.expected_calibration_error(
        [0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3], n_bins=2
    ) == pytest.approx(0.175)
    # A probability of exactly 1.0 falls in the last bin; perfect 0/1 predictions give 0.
    assert M.expected_calibration_error([0, 1, 1], [0.0, 1.0, 1.0]) == 0.0


def _ece_loop(y, p, n_bins):
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for b in range(n_bins):
        upper = p <= edges[b + 1] if b == n_bins - 1 else p < edges[b + 1]
        in_bin = (p >= edges[b]) & upper
        if in_bin.any():
            total += in_bin.mean() * abs(y[in_bin].mean() - p[in_bin].mean())
    return total


@pytest.mark.parametrize("n_bins", [1, 5, 15])
def test_ece_matches_a_per_bin_loop(n_bins):
    rng = np.random.default_rng(n_bins)
    p = rng.random(500)
    y = (rng.random(500) < p**2).astype(int)
    assert M.expected_calibration_error(y, p, n_bins=n_bins) == pytest.approx(
        _ece_loop(y, p, n_bins), abs=1e-12
    )


def test_ece_errors():
    with pytest.raises(
        ValueError, match=r"y_score must be probabilities in \[0, 1\]; got values in \[-0.1, 1.2\]"
    ):
        M.expected_calibration_error([0, 1], [-0.1, 1.2])
    with pytest.raises(ValueError, match=r"n_bins must be a positive integer; got 0"):
        M.expected_calibration_error([0, 1], [0.1, 0.2], n_bins=0)


def test_brier_score_hand_computed_and_matches_sklearn():
    assert M.brier_score([0, 1], [0.2, 0.6]) == pytest.approx((0.04 + 0.16) / 2)
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 300)
    p = rng.random(300)
    assert M.brier_score(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-15)


def test_calibration_bins_put_a_score_on_an_edge_in_the_bin_it_opens():
    # floor(0.29 * 100) = 28: the score would land in [0.28, 0.29).
    assert M.calibration_bins([0.29], n_bins=100).tolist() == [29]
    assert M.calibration_bins([0.0, 1 / 15, 0.5, 1.0], n_bins=15).tolist() == [0, 1, 7, 14]


def test_ece_equals_a_direct_computation_over_the_edges():
    # The edges are the doubles nearest b / B: a score printed as 0.29 is the edge 29 / 100.
    rng = np.random.default_rng(3)
    p = np.round(rng.random(400), 2)  # many scores exactly on edges of 100 bins
    y = (rng.random(400) < p).astype(int)
    n_bins = 100
    total = 0.0
    for b in range(n_bins):
        low, high = b / n_bins, (b + 1) / n_bins
        inside = [i for i, v in enumerate(p) if low <= v < high or (b == n_bins - 1 and v == 1.0)]
        if inside:
            total += abs(y[inside].sum() - p[inside].sum())
    assert M.expected_calibration_error(y, p, n_bins=n_bins) == pytest.approx(
        total / len(p), abs=1e-12
    )


def test_roc_curve_matches_scikit_learn():
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300), 2)  # ties
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    ours = M.roc_curve(y, s)
    np.testing.assert_allclose(ours[0], fpr)
    np.testing.assert_allclose(ours[1], tpr)
