"""Data-efficiency curves (Gulshan et al. 2016, "image sampling"): the primary metric against the
number of training cases, from the runs of ``medbench run --train-fraction``.

Runs on a fraction of the training cases are never ranked against full-data runs: they are left
out of the board and shown here, one curve per entry, with the entry's full-data run (on the
board, same submission content) as the last point. Each point is the representative run (lowest
seed) of that fraction, with its recorded 95 % CI; the version, split and superseded-content
rules of the board apply to each fraction's records (:func:`~medbench.leaderboard.entries.select`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medbench.leaderboard.entries import Excluded, Failed, select
from medbench.results import Record
from medbench.tasks import TaskSpec


@dataclass(frozen=True)
class Point:
    fraction: float  # 1.0: the full-data run on the board
    n_train: int
    value: float
    ci_low: float | None
    ci_high: float | None
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class Curve:
    entry: str
    points: tuple[Point, ...]  # by number of training cases


@dataclass(frozen=True)
class Efficiency:
    curves: tuple[Curve, ...]
    fractions: tuple[float, ...]  # every fraction with a point, ascending; 1.0 last when shown
    n_train: dict[float, int]  # training cases per fraction (the subsets are the same for all)
    failed: tuple[Failed, ...]
    excluded: tuple[Excluded, ...]


def is_partial(record: Record) -> bool:
    """A run on a fraction of the training cases (``--train-fraction``)."""
    return bool(record.get("train_subset"))


def data_efficiency(
    spec: TaskSpec, records: list[tuple[Path, Record]], board_entries, n_full: int
) -> Efficiency | None:
    """The curves of ``records`` (the task's partial runs); ``board_entries`` give the last points."""
    if not records:
        return None
    by_fraction: dict[float, list[tuple[Path, Record]]] = {}
    for path, record in records:
        by_fraction.setdefault(float(record["train_subset"]["fraction"]), []).append((path, record))
    points: dict[str, list[Point]] = {}
    contents: dict[str, str | None] = {}
    n_train: dict[float, int] = {}
    failed, excluded = [], []
    for fraction in sorted(by_fraction):
        chosen = select(spec, by_fraction[fraction])
        failed += chosen.failed
        excluded += chosen.excluded
        for entry in chosen.entries:
            metric = entry.metric(spec.primary_metric)
            n = int(entry.record["train_subset"]["n"])
            n_train[fraction] = n
            contents[entry.name] = entry.record["submission"].get("content_sha256")
            points.setdefault(entry.name, []).append(
                Point(fraction, n, entry.value(spec.primary_metric), metric.get("ci_low"),
                      metric.get("ci_high"), entry.seeds)
            )  # fmt: skip
    for entry in board_entries:
        if (
            entry.name in points
            and entry.record["submission"].get("content_sha256") == contents[entry.name]
        ):
            metric = entry.metric(spec.primary_metric)
            points[entry.name].append(
                Point(1.0, n_full, entry.value(spec.primary_metric), metric.get("ci_low"),
                      metric.get("ci_high"), entry.seeds)
            )  # fmt: skip
            n_train[1.0] = n_full
    curves = tuple(
        Curve(name, tuple(sorted(pts, key=lambda p: (p.n_train, p.fraction))))
        for name, pts in sorted(points.items())
    )
    return Efficiency(curves, tuple(sorted(n_train)), n_train, tuple(failed), tuple(excluded))
