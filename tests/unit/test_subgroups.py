"""Per-subgroup results and gaps (hidden stratification), on the fixture records."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medbench.leaderboard import build_boards, publish
from medbench.leaderboard.entries import case_tables
from medbench.leaderboard.stats import Statistic
from medbench.leaderboard.subgroups import _draws, _p_value, assign, subgroup_tables
from medbench.tasks import TASKS, get_task
from medbench.tasks.spec import Subgroups

RESULTS = Path(__file__).parent / "leaderboard_fixtures" / "results"
PARITY = Subgroups("parity", "case_id", (("even", r".*[02468]"), ("odd", r".*[13579]")))


@pytest.fixture
def lesions_with_parity(monkeypatch):
    spec = dataclasses.replace(get_task("toy-lesions"), subgroups=(PARITY,))
    monkeypatch.setitem(TASKS._items, "toy-lesions", spec)
    return spec


def test_cases_take_the_first_matching_label():
    spec = get_task("toy-lesions")
    groups = Subgroups("x", "case_id", (("a", r"A.*"), ("ab", r"AB.*"), ("b", r"B.*")))
    assert assign(spec, groups, ["A1", "AB2", "B3", "C4"], None) == ["a", "a", "b", None]
    truth = Subgroups("grade", "y_true", (("high", "2|3|4"), ("low", "0|1")))
    assert assign(spec, truth, ["p", "q", "r"], np.array([0, 3, 1])) == ["low", "high", "low"]


def test_subgroup_values_are_the_statistic_on_their_cases(lesions_with_parity, tmp_path):
    (board,) = build_boards(RESULTS, tasks=["toy-lesions"])
    (table,) = subgroup_tables(board)
    ids, tables = case_tables(list(board.ranked))
    even = np.array([int(c[-1]) % 2 == 0 for c in ids])
    assert table.counts == {"even": int(even.sum()), "odd": int((~even).sum())}
    for (name, cells, gaps), cases, entry in zip(table.rows, tables, board.ranked, strict=True):
        assert name == entry.name
        expected = roc_auc_score(cases["y_true"][even], cases["y_score"][even])
        assert cells["even"].value == pytest.approx(expected)
        assert cells["even"].ci_low <= cells["even"].value <= cells["even"].ci_high
        (gap,) = gaps  # two subgroups: one gap, the first against the second
        assert gap.value == pytest.approx(cells["even"].value - cells["odd"].value)
        assert gap.p <= gap.p_holm <= 1 and gap.flagged == (gap.p_holm < board.alpha)
    (page,) = publish(RESULTS, tmp_path, tasks=["toy-lesions"], format="markdown")[:1]
    text = page.read_text()
    assert "### By parity" in text and f"even (n = {int(even.sum())})" in text


def test_a_real_gap_is_found_and_no_gap_is_not():
    stat = Statistic("dice", True, column="dice")
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.9, 0.05, 60), rng.normal(0.6, 0.05, 60)
    table = {"dice": np.concatenate([a, b])}
    first, second = np.arange(60), np.arange(60, 120)
    gap = _draws(stat, table, first, 1) - _draws(stat, table, second, 2)
    assert _p_value(gap) < 0.001
    same = {"dice": rng.normal(0.8, 0.05, 120)}
    gap = _draws(stat, same, first, 1) - _draws(stat, same, second, 2)
    assert _p_value(gap) > 0.05


def test_tasks_declare_their_subgroups():
    assert [g.name for g in get_task("jsrt-anatomy").subgroups] == ["nodule"]
    assert [g.name for g in get_task("dsb2018-nuclei").subgroups] == ["image type"]
    assert [g.name for g in get_task("tb-cxr").subgroups] == ["hospital"]
    assert get_task("messidor2-grading").subgroups[0].column == "y_true"
