"""One task's leaderboard as data: ranked rows, failed runs, excluded records, header facts.

Everything the markdown, CSV and JSON renderers show comes from a :class:`Board`, so the three
formats hold the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from medbench.leaderboard.efficiency import Efficiency
from medbench.leaderboard.entries import Cases, Entry, Excluded, Failed, TaskRecords, case_tables
from medbench.leaderboard.stats import (
    ALPHA,
    N_PAIRED,
    N_RANK,
    PairedTests,
    Ranking,
    RankIntervals,
    Statistic,
    assign_ranks,
    check_summaries,
    rank_intervals,
    statistic_for,
)
from medbench.tasks import TaskSpec
from medbench.tasks.splits import load_split


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
    tables: tuple[Cases, ...]  # their per-case columns on the common cases, in the same order
    n_common: int  # test cases common to all ranked entries (the cases compared)
    split_sizes: dict[str, int]
    n_paired: int = N_PAIRED  # resamples of each paired bootstrap (see stats.paired_resamples)
    alpha: float = ALPHA
    efficiency: Efficiency | None = None  # the runs on fractions of the training cases

    @property
    def paired_test(self) -> str:
        """The paired test of this board, in words."""
        return self.statistic.test(self.n_paired)

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
    value = entry.value(spec.primary_metric)
    return (-value if spec.primary.higher_is_better else value, entry.name)


def build_board(task: TaskRecords) -> Board:
    """Rank one task's entries: paired tests against the leader, the tie rule, rank intervals."""
    spec = task.spec
    stat = statistic_for(spec)
    for entry in task.entries:
        for record, path in zip(entry.records, entry.files, strict=True):
            check_summaries(spec, record, path)
    defined = sorted(
        (e for e in task.entries if not math.isnan(e.value(spec.primary_metric))),
        key=lambda e: _sort_key(spec, e),
    )
    undefined = [e for e in task.entries if math.isnan(e.value(spec.primary_metric))]
    ranking = intervals = None
    n_common, tables, n_paired = 0, [], N_PAIRED
    if defined:
        common, tables = case_tables(defined)
        n_common = len(common)
        tests = PairedTests(stat, tables)
        n_paired = tests.n_resamples
        ranking = assign_ranks(len(defined), tests)
        if len(defined) > 1:
            # a whole-sample statistic reuses the first N_RANK of the paired test's resamples
            reuse = tests.resampled[:N_RANK] if stat.column is None and not stat.delong else None
            intervals = rank_intervals(stat, tables, values=reuse)
    rows = []
    leader_value = defined[0].value(spec.primary_metric) if defined else float("nan")
    for i, entry in enumerate(defined):
        vs = ranking.versus_leader(i)
        rows.append(
            Row(
                entry,
                ranking.rank[i],
                ranking.tied[i],
                None if i == 0 else entry.value(spec.primary_metric) - leader_value,
                vs.p_raw if vs else None,
                vs.p_holm if vs else None,
                intervals.low[i] if intervals else 1,
                intervals.high[i] if intervals else 1,
            )
        )
    order = sorted(range(len(rows)), key=lambda i: (rows[i].rank, i))
    rows = [rows[i] for i in order] + [
        Row(e, None, False, None, None, None, None, None) for e in undefined
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
    )
