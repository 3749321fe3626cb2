"""Results per subgroup of the test cases, and the gap of each subgroup to the rest.

One number over a whole test set can hide a subgroup on which a model fails (hidden
stratification: gaps of over 20 % in Oakden-Rayner et al. 2020). A task declares its subgroups
(``TaskSpec.subgroups``: a hospital, an image type, nodule present or not, a truth grade); for each
ranked entry the page shows the primary metric on each subgroup with its 95 % bootstrap CI, and
the gap between the subgroup and the rest of the cases. A subgroup and its rest are disjoint sets
of cases, so the gap is tested with an unpaired bootstrap: both are resampled independently
(:data:`N_GAP` resamples, seed :data:`~medbench.leaderboard.stats.SEED`), the statistic is
recomputed on each, and the two-sided p-value is twice the smaller tail of the resampled gaps
around 0. The p-values of a declaration (every entry, every subgroup) are Holm-corrected
together and a gap is flagged when the corrected p-value is below the board's alpha. With two
subgroups, one gap is shown (the first against the second).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass

import numpy as np

from medbench import metrics as M
from medbench.leaderboard.board import Board
from medbench.leaderboard.entries import case_tables
from medbench.leaderboard.stats import SEED, Statistic
from medbench.tasks import TaskSpec
from medbench.tasks.spec import Subgroups
from medbench.tasks.splits import load_split

N_GAP = 2000  # resamples of each side of a gap (and of a subgroup's interval)


@dataclass(frozen=True)
class Cell:
    value: float
    ci_low: float | None
    ci_high: float | None
    n: int


@dataclass(frozen=True)
class Gap:
    label: str  # the subgroup set against the rest
    value: float  # statistic on the subgroup minus on the rest
    p: float
    p_holm: float
    flagged: bool


@dataclass(frozen=True)
class SubgroupTable:
    name: str
    labels: tuple[str, ...]
    counts: dict[str, int]
    rows: tuple[tuple[str, dict[str, Cell], tuple[Gap, ...]], ...]  # entry, cells, gaps


def assign(spec: TaskSpec, groups: Subgroups, case_ids: list[str], y_true) -> list[str | None]:
    """Each case's subgroup label (None: no pattern matches, or the value is not known)."""
    if groups.column == "group":
        split = load_split(spec)
        known = dict(
            zip(
                split["case_id"].astype(str),
                split.get("group", split["case_id"]).astype(str),
                strict=True,
            )
        )
        values = [known.get(c) for c in case_ids]
    elif groups.column == "case_id":
        values = list(case_ids)
    elif groups.column == "y_true":
        values = None if y_true is None else [str(int(v)) for v in y_true]
        values = values or [None] * len(case_ids)
    else:
        raise ValueError(f"subgroups of {spec.name}: unknown column {groups.column!r}")
    out = []
    for v in values:
        label = None
        if v is not None:
            label = next((lab for lab, pat in groups.labels if re.fullmatch(pat, v)), None)
        out.append(label)
    return out


def _draws(stat: Statistic, table, idx: np.ndarray, seed: int) -> np.ndarray:
    """The statistic on ``N_GAP`` resamples of the cases ``idx`` (NaN where undefined)."""
    rng = np.random.default_rng(seed)
    picks = idx[rng.integers(0, idx.size, (N_GAP, idx.size))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if stat.column is not None:
            return np.nanmean(np.asarray(table[stat.column], np.float64)[picks], axis=1)
        if stat.many is not None:
            return np.asarray(stat.many(table, picks), np.float64)
        return np.array([stat(table, row) for row in picks], np.float64)


def _cell(stat: Statistic, table, idx: np.ndarray, draws: np.ndarray) -> Cell:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = stat(table, idx)
    finite = draws[np.isfinite(draws)]
    if finite.size < 2 or not math.isfinite(value):
        return Cell(value, None, None, int(idx.size))
    low, high = np.percentile(finite, [2.5, 97.5])
    return Cell(value, float(low), float(high), int(idx.size))


def _p_value(gaps: np.ndarray) -> float:
    finite = gaps[np.isfinite(gaps)]
    if finite.size == 0:
        return 1.0
    return float(min(1.0, 2 * min((finite <= 0).mean(), (finite >= 0).mean())))


def subgroup_tables(board: Board) -> list[SubgroupTable]:
    """One table per declared partition of the board's task (none without ranked entries)."""
    spec = board.spec
    if not spec.subgroups or not board.ranked:
        return []
    case_ids, tables = case_tables(list(board.ranked))
    out = []
    for k, groups in enumerate(spec.subgroups):
        labels_of = assign(spec, groups, case_ids, tables[0].get("y_true"))
        present = [lab for lab, _ in groups.labels if lab in labels_of]
        if len(present) < 2:
            continue  # one subgroup (or none) among the scored cases: nothing to compare
        members = {lab: np.flatnonzero([x == lab for x in labels_of]) for lab in present}
        contrasts = present[:1] if len(present) == 2 else present
        rows, raw = [], []
        for i, (entry, table) in enumerate(zip(board.ranked, tables, strict=True)):
            seed = SEED + 1000 * k + i  # one stream per (declaration, entry), the same every time
            cells, draws = {}, {}
            for j, lab in enumerate(present):
                draws[lab] = _draws(board.statistic, table, members[lab], seed * 97 + j)
                cells[lab] = _cell(board.statistic, table, members[lab], draws[lab])
            gaps = []
            for lab in contrasts:
                rest = np.flatnonzero([x is not None and x != lab for x in labels_of])
                rest_draws = _draws(board.statistic, table, rest, seed * 97 + 50)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    value = cells[lab].value - board.statistic(table, rest)
                p = _p_value(draws[lab] - rest_draws)
                gaps.append((lab, value, p))
                raw.append(p)
            rows.append((entry.name, cells, gaps))
        holm = iter(M.holm(np.asarray(raw)).tolist())
        final = []
        for name, cells, gaps in rows:
            done = []
            for lab, value, p in gaps:
                adjusted = float(next(holm))
                done.append(Gap(lab, value, p, adjusted, adjusted < board.alpha))
            final.append((name, cells, tuple(done)))
        counts = {lab: int(members[lab].size) for lab in present}
        out.append(SubgroupTable(groups.name, tuple(present), counts, tuple(final)))
    return out
