"""One task's leaderboard as data: ranked rows, failed runs, excluded records, header facts.

Everything the markdown, CSV and JSON renderers show comes from a :class:`Board`, so the three
formats hold the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from medbench.leaderboard.efficiency import Efficiency
from medbench.leaderboard.entries import Cases, Entry, Excluded, Failed, TaskRecords, run_tables
from medbench.leaderboard.stats import (
    ALPHA,
    N_PAIRED,
    N_RANK,
    SEED,
    SEED_METHOD,
    PairedTests,
    Ranking,
    RankIntervals,
    Runs,
    Statistic,
    assign_ranks,
    check_summaries,
    percentile_interval,
    rank_intervals,
    seed_interval,
    statistic_for,
)
from medbench.tasks import TaskSpec
from medbench.tasks.splits import load_split


@dataclass(frozen=True)
class Summary:
    """An entry's primary metric as the board shows it.

    One seed: the run's value and its CI as recorded. Several seeds: the mean over the seeds,
    their sample standard deviation, and the two-level bootstrap interval
    (:func:`~medbench.leaderboard.stats.seed_interval`) on the cases common to its runs.
    """

    value: float
    ci_low: float | None
    ci_high: float | None
    method: str
    sd: float | None = None  # over seeds; None with one seed


@dataclass(frozen=True)
class Row:
    entry: Entry
    rank: int | None  # None: the primary metric is undefined for this entry; not ranked
    tied: bool
    delta: float | None  # value minus the leader's value
    p_raw: float | None  # paired test against the leader (round 1)
    p_holm: float | None  # the same, Holm-corrected over round 1
    rank_low: int | None
    rank_high: int | None
    summary: Summary  # the primary value shown, with its CI

    @property
    def rank_label(self) -> str:
        if self.rank is None:
            return "–"
        return f"{self.rank}=" if self.tied else str(self.rank)


@dataclass(frozen=True)
class Board:
    spec: TaskSpec
    statistic: Statistic
    rows: tuple[Row, ...]  # display order: by rank, then by value
    failed: tuple[Failed, ...]
    excluded: tuple[Excluded, ...]
    ranking: Ranking | None
    intervals: RankIntervals | None
    ranked: tuple[Entry, ...]  # the ranked entries, best value first (indices of ranking/intervals)
    tables: tuple[Cases, ...]  # their representative runs' per-case columns on the common cases
    n_common: int  # test cases common to all runs of the ranked entries (the cases compared)
    split_sizes: dict[str, int]
    n_paired: int = N_PAIRED  # resamples of each paired bootstrap (see stats.paired_resamples)
    alpha: float = ALPHA
    efficiency: Efficiency | None = None  # the runs on fractions of the training cases
    runs: tuple[Runs, ...] = ()  # every seed's per-case columns on the common cases, as ranked

    @property
    def multi_seed(self) -> bool:
        """Whether a ranked entry has several seeds (its statistics are then two-level)."""
        return any(r.n_seeds > 1 for r in self.runs)

    @property
    def paired_test(self) -> str:
        """The paired test of this board, in words."""
        return self.statistic.test(self.n_paired, seeds=self.multi_seed)

    def summary(self, i: int) -> Summary:
        """The shown primary value of ranked entry ``i``."""
        name = self.ranked[i].name
        return next(r.summary for r in self.rows if r.entry.name == name)

    @property
    def leaders(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.rank == 1)

    @property
    def n_test(self) -> list[int]:
        return sorted({int(r.entry.record["task"].get("n_test", 0)) for r in self.rows})

    @property
    def data_sources(self) -> list[str]:
        found = set()
        for row in self.rows:
            src = row.entry.record["task"].get("data_source") or {}
            found.add(f"{src.get('dataset', '?')} ({src.get('layout', '?')})")
        return sorted(found)

    @property
    def data_hashes(self) -> list[str]:
        return sorted({str(r.entry.record["task"].get("data_sha256")) for r in self.rows})


def _sort_key(spec: TaskSpec, entry: Entry) -> tuple[float, str]:
    value = entry.shown_value(spec.primary_metric)
    return (-value if spec.primary.higher_is_better else value, entry.name)


def summarise(
    spec: TaskSpec,
    stat: Statistic,
    entry: Entry,
    runs: Runs | None = None,
    resampled: np.ndarray | None = None,
) -> Summary:
    """The primary value an entry shows (see :class:`Summary`).

    ``runs``: the entry's seeds on the cases common to its runs, when at hand; ``resampled``:
    its two-level resampled values on those cases (the first :data:`N_PAIRED` resamples of the
    board's paired tests), when at hand; both are computed otherwise.
    """
    metric = spec.primary_metric
    if len(entry.records) == 1:
        recorded = entry.metric(metric)
        return Summary(
            entry.value(metric),
            recorded.get("ci_low"),
            recorded.get("ci_high"),
            recorded.get("method", ""),
        )
    value = entry.shown_value(metric)
    mean_sd = entry.seed_mean_sd(metric)
    low = high = None
    if not math.isnan(value):
        if resampled is not None:
            low, high = percentile_interval(resampled)
        else:
            runs = runs or Runs(run_tables([entry])[1][0], entry.name)
            low, high = seed_interval(stat, runs)
        low, high = (None, None) if math.isnan(low) else (low, high)
    method = SEED_METHOD.format(n=N_PAIRED, seed=SEED)
    return Summary(value, low, high, method, mean_sd[1] if mean_sd else None)


def _case_ids(entry: Entry) -> set[str]:
    """The case ids common to an entry's runs."""
    return set.intersection(
        *(set((r.get("per_case") or {}).get("case_id") or ()) for r in entry.records)
    )


def build_board(task: TaskRecords) -> Board:
    """Rank one task's entries: paired tests against the leader, the tie rule, rank intervals."""
    spec = task.spec
    stat = statistic_for(spec)
    for entry in task.entries:
        for record, path in zip(entry.records, entry.files, strict=True):
            check_summaries(spec, record, path)
    shown = {e.name: e.shown_value(spec.primary_metric) for e in task.entries}
    defined = sorted(
        (e for e in task.entries if not math.isnan(shown[e.name])),
        key=lambda e: _sort_key(spec, e),
    )
    undefined = [e for e in task.entries if math.isnan(shown[e.name])]
    ranking = intervals = tests = None
    n_common, tables, runs, n_paired, common = 0, [], [], N_PAIRED, []
    if defined:
        common, seed_tables = run_tables(defined)
        runs = [Runs(t, e.name) for t, e in zip(seed_tables, defined, strict=True)]
        tables = [r.tables[0] for r in runs]
        n_common = len(common)
        tests = PairedTests(stat, runs)
        n_paired = tests.n_resamples
        ranking = assign_ranks(len(defined), tests)
        if len(defined) > 1:
            # the paired test's resamples, when it has them: their first N_RANK rows
            reuse = tests.resampled[:N_RANK] if tests.uses_resamples else None
            intervals = rank_intervals(stat, runs, values=reuse)
    # An entry with several seeds scored on the board's cases (the usual case) reuses the
    # board's runs and, when the tests resampled every entry, their first N_PAIRED resamples.
    summaries, position = {}, {e.name: i for i, e in enumerate(defined)}
    for e in task.entries:
        i = position.get(e.name)
        if len(e.records) > 1 and i is not None and _case_ids(e) == set(common):
            reuse = tests.resampled[:N_PAIRED, i] if tests.uses_resamples else None
            summaries[e.name] = summarise(spec, stat, e, runs[i], reuse)
        else:
            summaries[e.name] = summarise(spec, stat, e)
    rows = []
    leader_value = summaries[defined[0].name].value if defined else float("nan")
    for i, entry in enumerate(defined):
        vs = ranking.versus_leader(i)
        rows.append(
            Row(
                entry,
                ranking.rank[i],
                ranking.tied[i],
                None if i == 0 else summaries[entry.name].value - leader_value,
                vs.p_raw if vs else None,
                vs.p_holm if vs else None,
                intervals.low[i] if intervals else 1,
                intervals.high[i] if intervals else 1,
                summaries[entry.name],
            )
        )
    order = sorted(range(len(rows)), key=lambda i: (rows[i].rank, i))
    rows = [rows[i] for i in order] + [
        Row(e, None, False, None, None, None, None, None, summaries[e.name]) for e in undefined
    ]
    counts = load_split(spec)["split"].value_counts()
    sizes = {s: int(counts.get(s, 0)) for s in ("train", "val", "test")}
    return Board(
        spec,
        stat,
        tuple(rows),
        task.failed,
        task.excluded,
        ranking,
        intervals,
        tuple(defined),
        tuple(tables),
        n_common,
        sizes,
        n_paired,
        runs=tuple(runs),
    )
