"""What a leaderboard computes from per-case scores: the primary statistic, paired tests between
entries, the tie rule and bootstrap rank intervals (Wiesenfarth et al. 2021, challengeR).

An entry with several seeds (runs of the same content) enters every bootstrap here through a
two-level resample: each resample first draws the entry's seeds with replacement (each entry
from its own seeds, :func:`seed_weights`), then the test cases (the same resampled cases for
every entry and seed, so comparisons stay paired); the entry's statistic on the resample is the
mean over its drawn seeds of the statistic on the drawn cases. Seeds and cases are crossed
(every run is scored on the same test cases), and resampling both factors independently is
Owen's (2007) pigeonhole bootstrap; Davison & Hinkley (1997, section 3.8) discuss resampling at
each level of a multi-level design. Bouthillier et al. (2021) show why both levels matter:
training randomness (initialisation, data order, augmentation) moves benchmark results
markedly, besides the sampling of the test set. An entry with one seed has no seed level: its
numbers are exactly the single-run ones (DeLong's test between two such entries on a binary AUC).
"""

from __future__ import annotations

import hashlib
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
N_PAIRED = 2000  # resamples of a paired bootstrap (and of a several-seed entry's CI)
N_RANK = 1000  # resamples of the rank intervals
SEED = 0
SEED_STREAM = 1  # the seed draws' random stream: apart from the case draws, default_rng(SEED)
SEED_METHOD = (
    "two-level bootstrap (seeds, then test cases; {n} resamples, seed {seed}), percentile interval"
)


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

    def test(self, n_resamples: int = N_PAIRED, *, seeds: bool = False) -> str:
        """The paired test, in words (for the page's footnote); ``seeds``: some entry has
        several seeds, which the test then resamples too (see the module docstring)."""
        if self.delong and not seeds:
            return "DeLong's test for two correlated ROC curves on the per-case scores"
        if self.delong:
            return (
                "DeLong's test for two correlated ROC curves on the per-case scores when both "
                "entries have one seed, else the two-level paired bootstrap "
                f"({n_resamples} resamples, seed {SEED}) of the difference in `{self.metric}` "
                "(both entries recomputed on the same resampled cases, each on its own resampled "
                "seeds)"
            )
        if self.column is not None:
            text = (
                f"paired bootstrap ({n_resamples} resamples of cases, seed {SEED}) of the mean "
                f"difference in the per-case `{self.column}` (cases undefined for either entry dropped)"
            )
            return text if not seeds else text[:-1] + " in any of its seeds); " + _TWO_LEVEL
        text = (
            f"paired bootstrap ({n_resamples} resamples of cases, seed {SEED}): `{self.metric}` "
            "recomputed for both entries on the same resampled cases"
        )
        return text if not seeds else f"{text}; {_TWO_LEVEL}"


_TWO_LEVEL = "an entry with several seeds is resampled at two levels (its seeds, then the cases)"


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


@dataclass(frozen=True)
class Runs:
    """One entry's per-case columns: one table per run (seed, in seed order), on the same cases.

    ``key`` (the entry's name) seeds the entry's own draws of its seeds, so an entry draws the
    same seeds on every board and in every comparison it is in.
    """

    tables: tuple[Cases, ...]
    key: str = ""

    @property
    def n_seeds(self) -> int:
        return len(self.tables)


def as_runs(table: Cases | Runs) -> Runs:
    """A plain table is one run: an entry with one seed."""
    return table if isinstance(table, Runs) else Runs((table,))


def seed_weights(runs: Runs, n_resamples: int, *, seed: int = SEED) -> np.ndarray | None:
    """``(n_resamples, n_seeds)``: the share of each seed among the ``n_seeds`` seeds drawn with
    replacement on each resample (rows sum to 1); None for one seed (weight 1 everywhere).

    The draws are the rows of ``default_rng([seed, SEED_STREAM, h]).integers(0, k, (n, k))``, with
    ``h`` from the SHA-256 of ``runs.key``: independent of the case draws and between entries,
    the same in every process, and the first rows of a longer run are a shorter run's rows.
    """
    k = runs.n_seeds
    if k == 1:
        return None
    h = int.from_bytes(hashlib.sha256(runs.key.encode()).digest()[:8], "big")
    draws = np.random.default_rng([seed, SEED_STREAM, h]).integers(0, k, size=(n_resamples, k))
    return M.case_counts(draws, k) / k


def pool_seeds(per_seed: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """``(n_resamples,)``: on each resample, the mean over the drawn seeds of ``per_seed``
    (``(n_resamples, n_seeds)``, each seed's statistic on the resampled cases); NaN where a
    drawn seed's value is. With one seed (``weights`` None): that seed's values, unchanged."""
    if weights is None:
        return per_seed[:, 0]
    return np.where(weights > 0, weights * per_seed, 0.0).sum(axis=1)


def _pool(per_table: np.ndarray, runs: Sequence[Runs], n_resamples: int, seed: int) -> np.ndarray:
    """Columns of ``per_table`` (every run of every entry, in order) -> one column per entry."""
    out, start = [], 0
    for r in runs:
        block = per_table[:, start : start + r.n_seeds]
        out.append(pool_seeds(block, seed_weights(r, n_resamples, seed=seed)))
        start += r.n_seeds
    return np.stack(out, axis=1)


def resampled_values(
    stat: Statistic, tables: Sequence[Cases | Runs], *, n_resamples: int, seed: int = SEED
) -> np.ndarray:
    """``(n_resamples, n_entries)``: each entry's statistic recomputed on the same resampled cases.

    The resamples are the rows of ``default_rng(seed).integers(0, n, (n_resamples, n))``, so the
    first k rows of a longer run are the k rows of a shorter one. A per-case mean takes each
    chunk of resamples in one numpy pass over all entries (as
    :func:`medbench.metrics.rank_intervals`); a statistic with a vectorised form (``stat.many``:
    AUC, macro AUC) in one pass per entry; others are recomputed resample by resample. An
    entry with several seeds (a :class:`Runs`) has each seed's statistic computed on the same
    resampled cases and pooled with :func:`seed_weights` (the two-level bootstrap).
    """
    runs = [as_runs(t) for t in tables]
    flat = [t for r in runs for t in r.tables]
    exact = all(r.n_seeds == 1 for r in runs)
    per_table = _resampled_tables(stat, flat, n_resamples, seed, exact=exact)
    return _pool(per_table, runs, n_resamples, seed)


def resampled_means(
    values: np.ndarray, *, n_resamples: int, seed: int = SEED, exact: bool = True
) -> np.ndarray:
    """``(n_resamples, k)``: the nan-mean of each column of ``values`` (``(n_cases, k)``) on
    the rows of :func:`medbench.metrics.resample_indices` (NaN where no drawn case is defined).

    ``exact``: gather the resampled values and take ``np.nanmean``, the arithmetic of
    :func:`medbench.metrics.rank_intervals` and :func:`~medbench.metrics.paired_bootstrap` to
    the bit (single-seed boards keep their numbers); otherwise a matrix product of the draw
    counts with the values, the same means up to rounding at a fraction of the cost (several
    seeds: k grows with the runs).
    """
    n, k = values.shape
    if exact:
        chunks = M.resample_indices(n, n_resamples=n_resamples, seed=seed, width=k)
        return np.concatenate([np.nanmean(values[idx], axis=1) for idx in chunks])
    defined = ~np.isnan(values)
    filled, defined = np.where(defined, values, 0.0), defined.astype(np.float64)
    out = []
    for idx in M.resample_indices(n, n_resamples=n_resamples, seed=seed, width=2):
        counts = M.case_counts(idx, n).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append((counts @ filled) / (counts @ defined))
    return np.concatenate(out)


def _resampled_tables(
    stat: Statistic, tables: list[Cases], n_resamples: int, seed: int, *, exact: bool
) -> np.ndarray:
    n = _n_cases(tables[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if stat.column is not None:
            matrix = np.stack([_column(t, stat.column) for t in tables], axis=1)
            return resampled_means(matrix, n_resamples=n_resamples, seed=seed, exact=exact)
        if stat.many is not None:
            chunks = M.resample_indices(n, n_resamples=n_resamples, seed=seed, width=4)
            return np.concatenate(
                [np.stack([stat.many(t, chunk) for t in tables], axis=1) for chunk in chunks]
            )
        chunks = M.resample_indices(n, n_resamples=n_resamples, seed=seed, width=len(tables))
        values = [[stat(t, idx) for t in tables] for chunk in chunks for idx in chunk]
    return np.asarray(values, np.float64).reshape(n_resamples, len(tables))


def seed_interval(
    stat: Statistic,
    runs: Runs,
    *,
    n_resamples: int = N_PAIRED,
    alpha: float = ALPHA,
    seed: int = SEED,
) -> tuple[float, float]:
    """The two-level percentile bootstrap interval of an entry's mean over seeds: its seeds
    resampled, then the cases (:func:`resampled_values`); NaN resamples left out.

    Returns ``(low, high)``, NaN when no resample is defined.
    """
    values = resampled_values(stat, [runs], n_resamples=n_resamples, seed=seed)[:, 0]
    return percentile_interval(values, alpha=alpha)


def percentile_interval(values: np.ndarray, *, alpha: float = ALPHA) -> tuple[float, float]:
    """The central ``1 - alpha`` of resampled ``values`` (NaN left out; NaN when none is left)."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


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
    - a binary AUC: DeLong's test (analytic; no resampling) when both entries have one seed;
      otherwise the paired bootstrap of a whole-sample statistic.

    An entry given as :class:`Runs` with several seeds is resampled at two levels (module
    docstring): its resampled statistic is the mean over its drawn seeds; the cases a per-case
    mean drops are those undefined in any seed of either entry. With one seed per entry, every
    p-value is the single-seed one.

    ``n_resamples`` defaults to :func:`paired_resamples` of the board's largest Holm family.
    """

    def __init__(
        self, stat: Statistic, tables: Sequence[Cases | Runs], *, n_resamples: int | None = None
    ) -> None:
        self.stat, self.runs = stat, [as_runs(t) for t in tables]
        self.tables = [r.tables[0] for r in self.runs]  # the representative runs
        self.n_resamples = n_resamples or paired_resamples(len(self.runs) - 1)
        self._means: dict[tuple[int, bytes], np.ndarray] = {}

    @property
    def multi_seed(self) -> bool:
        return any(r.n_seeds > 1 for r in self.runs)

    @property
    def uses_resamples(self) -> bool:
        """Whether :attr:`resampled` (every entry on the shared resamples) serves the tests."""
        return self.stat.column is None and (not self.stat.delong or self.multi_seed)

    @cached_property
    def resampled(self) -> np.ndarray:
        return resampled_values(self.stat, self.runs, n_resamples=self.n_resamples)

    def __call__(self, i: int, j: int) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if self.stat.delong and self.runs[i].n_seeds == self.runs[j].n_seeds == 1:
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
        columns = [_column(t, self.stat.column) for k in (i, j) for t in self.runs[k].tables]
        keep = ~np.any(np.isnan(np.stack(columns)), axis=0)
        if np.count_nonzero(keep) < 2:
            return float("nan")
        return bootstrap_p_value(self._resampled_mean(i, keep) - self._resampled_mean(j, keep))

    def _resampled_mean(self, i: int, keep: np.ndarray) -> np.ndarray:
        """Entry ``i``'s (two-level) resampled means on the cases ``keep``, cached per set."""
        key = (i, np.packbits(keep).tobytes())
        if key not in self._means:
            runs = self.runs[i]
            # (n_kept, n_seeds): all seeds of the entry in one pass over the shared resamples
            values = np.stack([_column(t, self.stat.column)[keep] for t in runs.tables], axis=1)
            if runs.n_seeds == 1:  # exactly metrics.paired_bootstrap's means
                chunks = M.resample_indices(
                    values.shape[0], n_resamples=self.n_resamples, seed=SEED, width=2
                )
                means = [np.nanmean(values[:, 0][idx], axis=1) for idx in chunks]
                self._means[key] = np.concatenate(means)
            else:
                per_seed = resampled_means(values, n_resamples=self.n_resamples, exact=False)
                self._means[key] = pool_seeds(per_seed, seed_weights(runs, self.n_resamples))
        return self._means[key]


def paired_p_value(stat: Statistic, a: Cases | Runs, b: Cases | Runs) -> float:
    """Two-sided p-value that entries ``a`` and ``b`` (aligned cases) differ in ``stat``.

    DeLong's test for a binary AUC of two single-seed entries; a paired bootstrap of the
    per-case column for a mean (as :func:`medbench.metrics.paired_bootstrap`); otherwise a
    paired bootstrap that recomputes the statistic of both entries on the same resampled cases.
    Entries with several seeds (:class:`Runs`) are resampled at two levels. An undefined
    p-value (e.g. no defined case) counts as 1: no evidence of a difference.
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
    tables: Sequence[Cases | Runs],
    *,
    n_resamples: int = N_RANK,
    alpha: float = ALPHA,
    seed: int = SEED,
    values: np.ndarray | None = None,
) -> RankIntervals:
    """Bootstrap rank intervals: resample cases, recompute every entry's statistic, rank.

    Every entry is recomputed on the same resamples (:func:`resampled_values`: a per-case mean
    as :func:`medbench.metrics.rank_intervals` does, an entry with several seeds at two
    levels), ranked (1 = best, ties share the best rank, NaN last), and the interval holds the
    central ``1 - alpha`` of an entry's ranks, as observed ranks. ``values``: those recomputed
    values, when already at hand.
    """
    if values is None:
        values = resampled_values(stat, tables, n_resamples=n_resamples, seed=seed)
    samples = ranks_of(values, higher_is_better=stat.higher_is_better)
    low = np.percentile(samples, 100 * alpha / 2, axis=0, method="lower")
    high = np.percentile(samples, 100 * (1 - alpha / 2), axis=0, method="higher")
    return RankIntervals(tuple(int(v) for v in low), tuple(int(v) for v in high), samples)
