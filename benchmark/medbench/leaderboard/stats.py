"""What a leaderboard computes from per-case scores: the primary statistic, paired tests between
entries, the tie rule and bootstrap rank intervals (Wiesenfarth et al. 2021, challengeR)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.stats import rankdata

from medbench import metrics as M
from medbench.errors import MedbenchError, RecordError
from medbench.leaderboard.entries import Cases
from medbench.metric_specs import DELONG
from medbench.scoring import context_for
from medbench.tasks import TaskSpec

ALPHA = 0.05
N_PAIRED = 2000  # resamples of a paired bootstrap
N_RANK = 1000  # resamples of the rank intervals
SEED = 0


@dataclass(frozen=True)
class Statistic:
    """A summary metric recomputed from per-case columns, on all cases or on resampled indices.

    Either the mean of one per-case ``column`` or a ``whole``-sample statistic of case indices
    (AUC, kappa, CTC SEG...), which has no per-case column and must be recomputed per resample.
    """

    metric: str
    higher_is_better: bool
    column: str | None = None
    whole: Callable[[Cases, np.ndarray], float] | None = None
    delong: bool = False
    # ``whole`` on every row of an (n_resamples, n) index matrix at once, when the metric has it
    many: Callable[[Cases, np.ndarray], np.ndarray] | None = None

    def __call__(self, cases: Cases, idx: np.ndarray | None = None) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if self.column is not None:
                values = _column(cases, self.column)
                values = values if idx is None else values[idx]
                return float(np.nanmean(values)) if (~np.isnan(values)).any() else float("nan")
            n = len(next(iter(cases.values())))
            return float(self.whole(cases, np.arange(n) if idx is None else idx))

    def test(self, n_resamples: int = N_PAIRED) -> str:
        """The paired test, in words (for the page's footnote)."""
        if self.delong:
            return "DeLong's test for two correlated ROC curves on the per-case scores"
        if self.column is not None:
            return (
                f"paired bootstrap ({n_resamples} resamples of cases, seed {SEED}) of the mean "
                f"difference in the per-case `{self.column}` (cases undefined for either entry dropped)"
            )
        return (
            f"paired bootstrap ({n_resamples} resamples of cases, seed {SEED}): `{self.metric}` "
            "recomputed for both entries on the same resampled cases"
        )


def _column(cases: Cases, name: str) -> np.ndarray:
    if name not in cases:
        raise RecordError(f"per-case scores lack the column {name!r} (found {sorted(cases)})")
    return cases[name]


def statistic_for(spec: TaskSpec, metric: str | None = None) -> Statistic:
    """How ``metric`` (default: the primary one) of ``spec`` is recomputed from per-case columns:
    its spec's reduction, looked up in the registry (the one scoring used)."""
    metric = metric or spec.primary_metric
    bound = spec.metric(metric).bound
    if bound.spec.parameter == "group":  # needs the case table's groups, which records omit
        raise RecordError(
            f"the leaderboard cannot recompute metric {metric!r} of a {spec.kind} task "
            "from per-case scores"
        )
    context = context_for(spec)
    if bound.column is not None:
        return Statistic(metric, bound.higher_is_better, column=bound.column)

    def whole(cases: Cases, idx: np.ndarray) -> float:
        try:
            return bound.reduce(cases, idx, context)
        except KeyError as exc:
            raise RecordError(f"per-case scores lack the column {exc.args[0]!r}") from None

    def many(cases: Cases, idx: np.ndarray) -> np.ndarray:
        try:
            return bound.reduce_many(cases, idx, context)
        except KeyError as exc:
            raise RecordError(f"per-case scores lack the column {exc.args[0]!r}") from None

    return Statistic(
        metric,
        bound.higher_is_better,
        whole=whole,
        delong=bound.spec.ci == DELONG,
        many=many if bound.spec.reduce_many_fn is not None else None,
    )


def record_cases(record: dict) -> Cases:
    """A record's per-case scores as columns (``case_id`` left out)."""
    per_case = record.get("per_case") or {}
    out = {}
    for column, values in per_case.items():
        if column == "case_id" or not isinstance(values, list):
            continue
        out[column] = np.array([np.nan if v is None else v for v in values], np.float64)
    return out


def _same(recorded: object, recomputed: float) -> bool:
    if recorded is None:
        return math.isnan(recomputed)
    if not isinstance(recorded, (int, float)) or math.isnan(recomputed):
        return False
    return math.isclose(float(recorded), recomputed, rel_tol=1e-9, abs_tol=1e-12)


def check_summaries(spec: TaskSpec, record: dict, path: object) -> None:
    """Refuse a record whose summary values are not what its own per-case scores give.

    Every summary metric the leaderboard can recompute, and every per-class value with a
    per-case column (``dice_lungs``...), is recomputed from the published per-case scores. So a
    number on the board is always the number its per-case data (and CI, tests, ranks) stand for.
    """
    cases = record_cases(record)
    if not cases:
        raise RecordError(f"result record {path} has no per-case scores")
    lengths = {len(v) for v in cases.values()}
    if len(lengths) != 1 or len(record["per_case"].get("case_id") or []) not in lengths:
        raise RecordError(f"result record {path}: its per-case columns differ in length")
    for metric, entry in (record.get("metrics") or {}).items():
        try:
            stat = statistic_for(spec, metric)
        except (RecordError, KeyError, MedbenchError):
            continue  # a metric the board never shows from per-case data
        try:
            value = stat(cases)
        except RecordError:
            raise RecordError(f"result record {path}: no per-case data for {metric!r}") from None
        if not _same(entry.get("value"), value):
            raise RecordError(
                f"result record {path}: its {metric} is {entry.get('value')!r}, but its per-case "
                f"scores give {value!r}; the record was not made by medbench as it stands"
            )
    for cls, metrics in (record.get("per_class") or {}).items():
        for metric, entry in (metrics or {}).items():
            column = f"{metric}_{cls}"
            if column not in cases or not isinstance(entry, dict):
                continue
            values = cases[column]
            value = float(np.nanmean(values)) if (~np.isnan(values)).any() else float("nan")
            if not _same(entry.get("value"), value):
                raise RecordError(
                    f"result record {path}: its {metric} of {cls!r} is {entry.get('value')!r}, "
                    f"but its per-case scores give {value!r}"
                )


# --- paired comparisons --------------------------------------------------------------------------


def bootstrap_p_value(differences: np.ndarray) -> float:
    """Two-sided bootstrap p-value of "no difference" from resampled differences d*.

    ``p = min(1, 2 min(P(d* <= 0), P(d* >= 0)))`` with ``P = (count + 1) / (n + 1)``, as
    :func:`medbench.metrics.paired_bootstrap` computes it.
    """
    d = differences[~np.isnan(differences)]
    if d.size == 0:
        return float("nan")
    below = (np.count_nonzero(d <= 0) + 1) / (d.size + 1)
    above = (np.count_nonzero(d >= 0) + 1) / (d.size + 1)
    return float(min(1.0, 2 * min(below, above)))


def _n_cases(cases: Cases) -> int:
    return len(next(iter(cases.values())))


def paired_resamples(n_comparisons: int, *, alpha: float = ALPHA) -> int:
    """Resamples of each paired bootstrap on a board with ``n_comparisons`` per Holm family.

    A bootstrap p-value cannot fall below ``2 / (B + 1)`` (the +1 correction of Davison &
    Hinkley 1997), and Holm's step-down needs ``m p < alpha`` at its first step, so with B fixed
    a large enough board could never separate anyone: at ``B = 2000`` every family of 51 or more
    comparisons tied all entries, however different. ``B = max(N_PAIRED, ceil(4 m / alpha))``
    puts ``m`` times the smallest p-value at ``alpha / 2`` or below: entries that differ on
    (almost) every resample are always separated, and boards of up to 25 comparisons keep their
    2000 resamples.
    """
    return max(N_PAIRED, math.ceil(4 * max(n_comparisons, 0) / alpha))


def resampled_values(
    stat: Statistic, tables: Sequence[Cases], *, n_resamples: int, seed: int = SEED
) -> np.ndarray:
    """``(n_resamples, n_entries)``: each entry's statistic recomputed on the same resampled cases.

    The resamples are the rows of ``default_rng(seed).integers(0, n, (n_resamples, n))``, so the
    first k rows of a longer run are the k rows of a shorter one. A statistic with a vectorised
    form (``stat.many``: AUC, macro AUC) takes each chunk of resamples in one numpy pass per
    entry; others are recomputed resample by resample.
    """
    n = _n_cases(tables[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if stat.many is not None:
            chunks = M.resample_indices(n, n_resamples=n_resamples, seed=seed, width=4)
            return np.concatenate(
                [np.stack([stat.many(t, chunk) for t in tables], axis=1) for chunk in chunks]
            )
        chunks = M.resample_indices(n, n_resamples=n_resamples, seed=seed, width=len(tables))
        values = [[stat(t, idx) for t in tables] for chunk in chunks for idx in chunk]
    return np.asarray(values, np.float64).reshape(n_resamples, len(tables))


class PairedTests:
    """Paired p-values between entries ``i`` and ``j`` of ``tables`` (aligned cases).

    Every bootstrap here uses the same resamples (seed :data:`SEED`), so each entry's resampled
    statistic is computed once and a pair's p-value is the difference of two vectors: the paired
    bootstrap (both entries on the same cases) at a cost linear in the number of entries.

    - a whole-sample statistic (kappa, macro AUC, CTC SEG): every entry recomputed on one
      shared set of resampled cases;
    - a per-case mean (Dice, IoU...): the cases undefined for either entry are dropped, as
      :func:`medbench.metrics.paired_bootstrap` does, and each entry's resampled means are kept
      per set of remaining cases (one set, when no case is undefined), the same numbers as
      :func:`~medbench.metrics.paired_bootstrap` gives pair by pair;
    - a binary AUC: DeLong's test (analytic; no resampling).

    ``n_resamples`` defaults to :func:`paired_resamples` of the board's largest Holm family.
    """

    def __init__(
        self, stat: Statistic, tables: Sequence[Cases], *, n_resamples: int | None = None
    ) -> None:
        self.stat, self.tables = stat, list(tables)
        self.n_resamples = n_resamples or paired_resamples(len(self.tables) - 1)
        self._means: dict[tuple[int, bytes], np.ndarray] = {}

    @cached_property
    def resampled(self) -> np.ndarray:
        return resampled_values(self.stat, self.tables, n_resamples=self.n_resamples)

    def __call__(self, i: int, j: int) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if self.stat.delong:
                a, b = self.tables[i], self.tables[j]
                p = M.delong_test(
                    _column(a, "y_true"), _column(a, "y_score"), _column(b, "y_score")
                )
            elif self.stat.column is not None:
                p = self._column_p_value(i, j)
            else:
                p = bootstrap_p_value(self.resampled[:, i] - self.resampled[:, j])
        p = float(p)
        return 1.0 if math.isnan(p) else p

    def _column_p_value(self, i: int, j: int) -> float:
        a, b = (_column(self.tables[k], self.stat.column) for k in (i, j))
        keep = ~(np.isnan(a) | np.isnan(b))
        if np.count_nonzero(keep) < 2:
            return float("nan")
        return bootstrap_p_value(self._resampled_mean(i, keep) - self._resampled_mean(j, keep))

    def _resampled_mean(self, i: int, keep: np.ndarray) -> np.ndarray:
        key = (i, np.packbits(keep).tobytes())
        if key not in self._means:
            values = _column(self.tables[i], self.stat.column)[keep]
            chunks = M.resample_indices(
                values.size, n_resamples=self.n_resamples, seed=SEED, width=2
            )
            self._means[key] = np.concatenate([np.nanmean(values[idx], axis=1) for idx in chunks])
        return self._means[key]


def paired_p_value(stat: Statistic, a: Cases, b: Cases) -> float:
    """Two-sided p-value that entries ``a`` and ``b`` (aligned cases) differ in ``stat``.

    DeLong's test for a binary AUC; a paired bootstrap of the per-case column for a mean (as
    :func:`medbench.metrics.paired_bootstrap`); otherwise a paired bootstrap that recomputes the
    statistic of both entries on the same resampled cases. An undefined p-value (e.g. no
    defined case) counts as 1: no evidence of a difference.
    """
    return PairedTests(stat, [a, b])(0, 1)


# --- ranks ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    leader: int
    other: int
    p_raw: float
    p_holm: float


@dataclass(frozen=True)
class Ranking:
    """Ranks of entries given best first; ``rounds`` holds every comparison made."""

    rank: tuple[int, ...]
    tied: tuple[bool, ...]
    rounds: tuple[tuple[Comparison, ...], ...]

    def versus_leader(self, i: int) -> Comparison | None:
        """The first round's comparison of entry ``i`` with the overall leader."""
        for c in self.rounds[0] if self.rounds else ():
            if c.other == i:
                return c
        return None


def assign_ranks(n: int, p_value: Callable[[int, int], float], *, alpha: float = ALPHA) -> Ranking:
    """The tie rule. Entries ``0..n-1`` come ordered best first by their value.

    Round 1: the leader (entry 0) is compared with every other entry; the p-values are
    Holm-corrected over those comparisons; entries with corrected p >= ``alpha`` share rank 1
    with the leader. Next round: the best entry not yet ranked leads and is compared with the
    remaining ones (a new Holm family), and its group takes the next free rank (competition
    ranking: 1, 1, 3...). Repeat until every entry is ranked.
    """
    rank, tied = [0] * n, [False] * n
    remaining, next_rank, rounds = list(range(n)), 1, []
    while remaining:
        leader, others = remaining[0], remaining[1:]
        raw = [float(p_value(leader, j)) for j in others]
        adjusted = [float(p) for p in M.holm(np.asarray(raw))] if raw else []
        rounds.append(
            tuple(
                Comparison(leader, j, p, q) for j, p, q in zip(others, raw, adjusted, strict=True)
            )
        )
        group = [leader] + [j for j, q in zip(others, adjusted, strict=True) if q >= alpha]
        for g in group:
            rank[g], tied[g] = next_rank, len(group) > 1
        next_rank += len(group)
        remaining = [j for j in others if j not in group]
    return Ranking(tuple(rank), tuple(tied), tuple(rounds))


@dataclass(frozen=True)
class RankIntervals:
    low: tuple[int, ...]
    high: tuple[int, ...]
    samples: np.ndarray  # (n_resamples, n_entries) rank of each entry in each resample


def ranks_of(values: np.ndarray, *, higher_is_better: bool) -> np.ndarray:
    """Ranks along the last axis (1 = best, ties share the best rank, NaN last)."""
    keyed = np.where(np.isnan(values), np.inf, -values if higher_is_better else values)
    return rankdata(keyed, method="min", axis=-1).astype(np.int64)


def rank_intervals(
    stat: Statistic,
    tables: Sequence[Cases],
    *,
    n_resamples: int = N_RANK,
    alpha: float = ALPHA,
    seed: int = SEED,
    values: np.ndarray | None = None,
) -> RankIntervals:
    """Bootstrap rank intervals: resample cases, recompute every entry's statistic, rank.

    A per-case mean goes to :func:`medbench.metrics.rank_intervals`; a whole-sample statistic
    is recomputed per resample (``values``: those recomputed values, when already at hand).
    """
    if stat.column is not None:
        matrix = np.stack([_column(t, stat.column) for t in tables], axis=1)
        low, high, samples = M.rank_intervals(
            matrix,
            higher_is_better=stat.higher_is_better,
            n_resamples=n_resamples,
            alpha=alpha,
            seed=seed,
        )
        samples = np.asarray(samples)
    else:
        # The same resamples for every entry, ranked and summarised as metrics.rank_intervals does.
        if values is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                values = resampled_values(stat, tables, n_resamples=n_resamples, seed=seed)
        samples = ranks_of(values, higher_is_better=stat.higher_is_better)
        low = np.percentile(samples, 100 * alpha / 2, axis=0, method="lower")
        high = np.percentile(samples, 100 * (1 - alpha / 2), axis=0, method="higher")
    return RankIntervals(tuple(int(v) for v in low), tuple(int(v) for v in high), samples)
