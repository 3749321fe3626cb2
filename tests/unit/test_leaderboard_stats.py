"""medbench.leaderboard.stats: paired tests that must and must not find a difference, the tie
rule with Holm's correction (hand-computed), rank intervals."""

from __future__ import annotations

import numpy as np
import pytest

from medbench.leaderboard.stats import (
    PairedTests,
    Statistic,
    assign_ranks,
    bootstrap_p_value,
    paired_p_value,
    paired_resamples,
    rank_intervals,
    ranks_of,
    statistic_for,
)
from medbench.tasks import get_task

RNG = np.random.default_rng(12345)
N = 120


def _dice_cases(values):
    return {"dice": np.asarray(values, float)}


@pytest.fixture(scope="module")
def dice_stat():
    return statistic_for(get_task("toy-anatomy"))


def test_dice_statistic_is_the_mean_of_the_per_case_column(dice_stat):
    assert dice_stat.column == "dice" and not dice_stat.delong
    assert dice_stat(_dice_cases([0.5, np.nan, 1.0])) == pytest.approx(0.75)


def test_paired_bootstrap_dice_identical_plus_tiny_noise_is_a_tie(dice_stat):
    a = RNG.uniform(0.6, 0.95, N)
    b = a + RNG.normal(0, 1e-3, N)
    assert paired_p_value(dice_stat, _dice_cases(a), _dice_cases(b)) > 0.05


def test_paired_bootstrap_dice_large_shift_is_significant(dice_stat):
    a = RNG.uniform(0.6, 0.95, N)
    b = a - 0.1 + RNG.normal(0, 0.02, N)
    assert paired_p_value(dice_stat, _dice_cases(a), _dice_cases(b)) < 0.001


def test_pairing_matters_a_shift_smaller_than_the_spread_is_still_found(dice_stat):
    # Unpaired, a 0.02 shift is lost in a spread of 0.1; paired (same cases) it is obvious.
    a = RNG.uniform(0.5, 0.9, N)
    b = a - 0.02 + RNG.normal(0, 0.005, N)
    assert paired_p_value(dice_stat, _dice_cases(a), _dice_cases(b)) < 0.01


def _binary(y, s):
    return {"y_true": y, "y_score": s}


def test_delong_identical_plus_tiny_noise_is_a_tie_and_a_worse_model_is_not():
    stat = statistic_for(get_task("toy-lesions"))
    assert stat.delong
    y = np.arange(N) % 2
    s = 1.5 * y + RNG.normal(0, 1, N)
    tiny = s + RNG.normal(0, 1e-3, N)
    worse = 0.3 * y + RNG.normal(0, 1, N)
    assert paired_p_value(stat, _binary(y, s), _binary(y, tiny)) > 0.05
    assert paired_p_value(stat, _binary(y, s), _binary(y, worse)) < 0.01
    assert paired_p_value(stat, _binary(y, s), _binary(y, s.copy())) == 1.0


def test_whole_sample_statistic_qwk_is_recomputed_on_paired_resamples():
    stat = statistic_for(get_task("messidor2-grading"))
    assert stat.column is None and stat.whole is not None and not stat.delong
    y = RNG.integers(0, 5, N)
    good = np.clip(y + RNG.integers(-1, 2, N) * (RNG.random(N) < 0.2), 0, 4)
    bad = RNG.integers(0, 5, N)
    a = {"y_true": y, "y_pred": good}
    assert paired_p_value(stat, a, {"y_true": y, "y_pred": good.copy()}) > 0.05
    assert paired_p_value(stat, a, {"y_true": y, "y_pred": bad}) < 0.001


def test_ctc_seg_is_a_ratio_of_sums_not_a_mean_of_ratios():
    stat = statistic_for(get_task("ctc-u373"))
    cases = {"seg_matched": np.array([9.0, 0.5]), "seg_objects": np.array([10.0, 1.0])}
    assert stat(cases) == pytest.approx(9.5 / 11)


def test_bootstrap_p_value_two_sided_with_the_plus_one_correction():
    # P(d <= 0) = (0 + 1) / 5, P(d >= 0) = (4 + 1) / 5 -> p = 2 * 0.2
    assert bootstrap_p_value(np.array([1.0, 2, 3, 4])) == pytest.approx(0.4)
    assert bootstrap_p_value(np.array([-1.0, 1, 2, 3])) == pytest.approx(0.8)
    assert bootstrap_p_value(np.array([0.0, 0, 0, 0])) == 1.0
    assert np.isnan(bootstrap_p_value(np.array([np.nan])))


# --- the tie rule --------------------------------------------------------------------------------


def _fake(table):
    return lambda i, j: table[(i, j)]


def test_holm_turns_a_borderline_p_into_a_tie():
    # Round 1, leader 0 vs 1, 2, 3 with raw p 0.01, 0.04, 0.03. Holm (m = 3), sorted ascending:
    # 0.01 * 3 = 0.03; 0.03 * 2 = 0.06; 0.04 * 1 = 0.04 -> max(0.06, 0.04) = 0.06.
    # Raw, entry 2 (p 0.04) would differ from the leader; corrected (0.06) it is tied with it.
    table = {(0, 1): 0.01, (0, 2): 0.04, (0, 3): 0.03}
    ranking = assign_ranks(4, _fake(table))
    first = {c.other: c for c in ranking.rounds[0]}
    assert first[1].p_holm == pytest.approx(0.03)
    assert first[2].p_holm == pytest.approx(0.06)
    assert first[3].p_holm == pytest.approx(0.06)
    assert ranking.rank == (1, 4, 1, 1)
    assert ranking.tied == (True, False, True, True)
    assert len(ranking.rounds) == 2 and ranking.rounds[1] == ()


def test_without_holm_the_same_p_values_would_split_the_group():
    # The rule compares Holm-corrected values: a single comparison (m = 1) is not corrected.
    ranking = assign_ranks(2, _fake({(0, 1): 0.04}))
    assert ranking.rank == (1, 2) and ranking.tied == (False, False)


def test_tie_rule_goes_down_the_table():
    # 0 differs from 1, 2, 3. Round 2: 1 leads, tied with 2 (p 0.3 * 2 = 0.6), not 3 (0.001 * 2).
    table = {(0, 1): 0.0001, (0, 2): 0.0001, (0, 3): 0.0001, (1, 2): 0.3, (1, 3): 0.001}
    ranking = assign_ranks(4, _fake(table))
    assert ranking.rank == (1, 2, 2, 4)
    assert ranking.tied == (False, True, True, False)
    assert [c.leader for c in ranking.rounds[1]] == [1, 1]


def test_single_and_no_entries():
    assert assign_ranks(1, _fake({})).rank == (1,)
    assert assign_ranks(0, _fake({})).rank == ()


# --- rank intervals ------------------------------------------------------------------------------


def test_ranks_of_direction_ties_and_nan():
    v = np.array([0.9, 0.7, 0.9, np.nan])
    assert ranks_of(v, higher_is_better=True).tolist() == [1, 3, 1, 4]
    assert ranks_of(v, higher_is_better=False).tolist() == [2, 1, 2, 4]


def test_rank_intervals_separate_clear_entries_and_overlap_close_ones(dice_stat):
    base = RNG.uniform(0.5, 0.9, N)
    tables = [
        _dice_cases(base + 0.1),
        _dice_cases(base + RNG.normal(0, 0.05, N)),
        _dice_cases(base + RNG.normal(0, 0.05, N)),
    ]
    ri = rank_intervals(dice_stat, tables, n_resamples=200)
    assert (ri.low[0], ri.high[0]) == (1, 1)
    assert ri.low[1] == ri.low[2] == 2 and ri.high[1] == ri.high[2] == 3
    assert ri.samples.shape == (200, 3)


def test_rank_intervals_for_auc_resample_and_recompute():
    stat = statistic_for(get_task("toy-lesions"))
    y = np.arange(N) % 2
    strong = 3 * y + RNG.normal(0, 1, N)
    weak = 0.2 * y + RNG.normal(0, 1, N)
    ri = rank_intervals(stat, [_binary(y, strong), _binary(y, weak)], n_resamples=200)
    assert ri.low == (1, 2) and ri.high == (1, 2)
    again = rank_intervals(stat, [_binary(y, strong), _binary(y, weak)], n_resamples=200)
    assert np.array_equal(ri.samples, again.samples)  # seeded


def test_statistic_rejects_a_metric_without_per_case_data():
    with pytest.raises(Exception, match="cannot recompute metric .auc@shenzhen."):
        statistic_for(get_task("tb-cxr"), "auc@shenzhen")


def test_statistic_class_is_frozen():
    stat = Statistic("x", True, column="x")
    with pytest.raises(AttributeError):
        stat.metric = "y"  # type: ignore[misc]


# --- large boards --------------------------------------------------------------------------------

BIG = 64


def _board_ranks(stat, tables, **kwargs):
    return assign_ranks(len(tables), PairedTests(stat, tables, **kwargs)).rank


def test_a_64_entry_board_of_clearly_different_entries_does_not_tie(dice_stat):
    # Entry k is entry 0 minus 0.01 k on every case: each pair differs on every resample, so its
    # bootstrap p-value is the smallest there is. Holm over 63 comparisons still separates them.
    base = RNG.uniform(0.3, 0.95, 40)
    tables = [_dice_cases(base - 0.005 * k) for k in range(BIG)]
    assert _board_ranks(dice_stat, tables) == tuple(range(1, BIG + 1))


def test_with_a_fixed_2000_resamples_the_same_board_would_tie_everyone(dice_stat):
    # The bug the resample count fixes: p >= 2 / 2001, so Holm's first step gives 63 p > 0.05.
    base = RNG.uniform(0.3, 0.95, 40)
    tables = [_dice_cases(base - 0.005 * k) for k in range(BIG)]
    assert set(_board_ranks(dice_stat, tables, n_resamples=2000)) == {1}


def test_a_64_entry_board_of_identical_entries_ties_at_rank_1(dice_stat):
    base = RNG.uniform(0.3, 0.95, 40)
    assert set(_board_ranks(dice_stat, [_dice_cases(base.copy()) for _ in range(BIG)])) == {1}


def test_paired_resamples_keep_2000_on_small_boards_and_grow_with_the_family():
    assert paired_resamples(1) == paired_resamples(25) == 2000
    for m in (26, 63, 500):
        b = paired_resamples(m)
        assert m * 2 / (b + 1) <= 0.05 / 2  # m times the smallest p stays below alpha / 2


def test_board_tests_equal_the_pairwise_paired_bootstrap(dice_stat):
    # The shared resamples are an optimisation, not a different test: same p-values as
    # metrics.paired_bootstrap pair by pair, also when some cases are undefined for one entry.
    from medbench import metrics as M

    cols = [RNG.uniform(0.4, 0.9, 50) for _ in range(4)]
    cols[2][[3, 17]] = np.nan
    tests = PairedTests(dice_stat, [_dice_cases(c) for c in cols])
    for i in range(4):
        for j in range(i + 1, 4):
            expected = M.paired_bootstrap(cols[i], cols[j], n_resamples=2000, seed=0).p_value
            assert tests(i, j) == expected


def test_auc_board_rank_intervals_use_the_vectorised_auc():
    stat = statistic_for(get_task("toy-lesions"))
    assert stat.many is not None
    y = np.arange(N) % 2
    tables = [_binary(y, (1 + k) * y + RNG.normal(0, 1, N)) for k in range(3)]
    looped = Statistic(stat.metric, True, whole=stat.whole, delong=True)
    fast = rank_intervals(stat, tables, n_resamples=100)
    slow = rank_intervals(looped, tables, n_resamples=100)
    assert np.array_equal(fast.samples, slow.samples)
