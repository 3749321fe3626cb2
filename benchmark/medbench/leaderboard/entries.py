"""Result records -> leaderboard entries: which records count, and how seeds are combined.

Rules (stated again in every generated page):

- records whose task version or split hash differ from the current spec are excluded (listed);
- per submission name, only the records of its newest content (``submission.content_sha256`` of
  the most recently ``created`` record) count; older contents are superseded;
- a submission's successful runs of that content form one entry; its failed runs are listed
  separately, never ranked;
- an entry with one seed shows that run's value and recorded CI; an entry with several seeds
  shows the mean over its seeds (and their standard deviation), and its CI, paired tests and
  rank interval come from a two-level bootstrap over its seeds and the test cases
  (:mod:`medbench.leaderboard.stats`); its other metrics, per-class values and per-case
  figures are those of its run with the lowest seed (seed 0 when present).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medbench.errors import RecordError
from medbench.results import read_record
from medbench.tasks import TaskSpec, get_task

Record = dict[str, Any]
Cases = dict[str, np.ndarray]  # per-case columns, aligned on the case ids common to all entries
_INTEGER_COLUMNS = ("y_true", "y_pred")


@dataclass(frozen=True)
class Entry:
    """One ranked row: a submission's successful runs of its newest content, by seed."""

    name: str
    records: tuple[Record, ...]  # sorted by seed; records[0] is the representative run
    files: tuple[Path, ...]

    @property
    def record(self) -> Record:
        return self.records[0]

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(int(r["seed"]) for r in self.records)

    @property
    def path(self) -> str:
        return str(self.record["submission"].get("path") or self.name)

    @property
    def ensemble_of(self) -> list[str] | None:
        """The member entries when this entry is an ensemble (``medbench ensemble``), else None."""
        info = self.record.get("ensemble")
        return [str(m.get("entry")) for m in info.get("members") or []] if info else None

    @property
    def derived_from(self) -> str | None:
        """The fine task when this entry is a fine-to-coarse score (medbench.coarse), else None."""
        info = self.record.get("derived")
        return str(info.get("fine_task")) if info else None

    @property
    def isolation(self) -> str:
        """``sandbox`` when every run of the entry was sandboxed, else ``none``."""
        modes = {(r.get("isolation") or {}).get("mode") for r in self.records}
        return "sandbox" if modes == {"sandbox"} else "none"

    def metric(self, name: str) -> dict[str, Any]:
        return self.record.get("metrics", {}).get(name) or {}

    def value(self, name: str) -> float:
        return _float(self.metric(name).get("value"))

    def seed_values(self, name: str) -> list[float]:
        return [_float((r.get("metrics", {}).get(name) or {}).get("value")) for r in self.records]

    def shown_value(self, name: str) -> float:
        """The value the board shows: the run's with one seed, else the mean over the seeds
        whose value is defined (NaN when none is)."""
        if len(self.records) == 1:
            return self.value(name)
        values = np.array([v for v in self.seed_values(name) if not math.isnan(v)])
        return float(values.mean()) if values.size else float("nan")

    def seed_mean_sd(self, name: str) -> tuple[float, float] | None:
        """Mean and sample standard deviation over seeds (None with a single seed)."""
        values = np.array([v for v in self.seed_values(name) if not math.isnan(v)])
        if len(self.records) < 2 or values.size < 2:
            return None
        return float(values.mean()), float(values.std(ddof=1))

    def class_metric(self, cls: str, metric: str) -> dict[str, Any]:
        return (self.record.get("per_class", {}).get(cls) or {}).get(metric) or {}

    def class_value(self, cls: str, metric: str) -> float:
        return _float(self.class_metric(cls, metric).get("value"))


@dataclass(frozen=True)
class Failed:
    name: str
    seed: int
    reason: str
    file: Path


@dataclass(frozen=True)
class Excluded:
    file: Path
    reason: str


@dataclass(frozen=True)
class TaskRecords:
    spec: TaskSpec
    entries: tuple[Entry, ...]  # sorted by name; ranking happens later
    failed: tuple[Failed, ...]
    excluded: tuple[Excluded, ...]


def _float(v: Any) -> float:
    return float("nan") if v is None else float(v)


def load_task_records(
    results_dir: Path, tasks: list[str] | None = None
) -> dict[str, list[tuple[Path, Record]]]:
    """Every record under ``results_dir/<task>/``, verified, grouped by task (sorted by path).

    A record whose hash does not match raises :class:`RecordError` naming the file.
    """
    root = Path(results_dir)
    wanted = None if tasks is None else {get_task(t).name for t in tasks}
    found: dict[str, list[tuple[Path, Record]]] = {}
    if not root.is_dir():
        return found
    for path in sorted(root.glob("*/*.json")):
        if path.name.startswith(".") or (wanted is not None and path.parent.name not in wanted):
            continue
        record = read_record(path, verify=True)
        task = record["task"].get("name") if isinstance(record["task"], dict) else None
        if task != path.parent.name:
            raise RecordError(
                f"result record {path} is for task {task!r} but lies in folder {path.parent.name!r}"
            )
        found.setdefault(task, []).append((path, record))
    return found


def select(spec: TaskSpec, records: list[tuple[Path, Record]]) -> TaskRecords:
    """Apply the rules of this module's docstring to one task's records."""
    current, excluded = [], []
    for path, rec in records:
        task = rec["task"]
        if task.get("version") != spec.version:
            excluded.append(
                Excluded(path, f"task version {task.get('version')}; current is {spec.version}")
            )
        elif task.get("split_sha256") != spec.split_sha256:
            excluded.append(Excluded(path, "split hash differs from the current split file"))
        else:
            current.append((path, rec))
    current = _drop_duplicates(current, excluded)
    by_name: dict[str, list[tuple[Path, Record]]] = {}
    for path, rec in current:
        by_name.setdefault(rec["submission"]["name"], []).append((path, rec))
    entries, failed = [], []
    for name in sorted(by_name):
        group = by_name[name]
        newest = max(group, key=lambda pr: (str(pr[1].get("created", "")), str(pr[0])))
        content = newest[1]["submission"].get("content_sha256")
        for path, rec in group:
            if rec["submission"].get("content_sha256") != content:
                excluded.append(Excluded(path, f"superseded by newer content of {name!r}"))
        keep = sorted(
            (pr for pr in group if pr[1]["submission"].get("content_sha256") == content),
            key=lambda pr: int(pr[1]["seed"]),
        )
        ok = [pr for pr in keep if pr[1].get("status") == "ok"]
        for path, rec in keep:
            if rec.get("status") != "ok":
                failed.append(Failed(name, int(rec["seed"]), failure_reason(rec), path))
        if ok:
            entries.append(Entry(name, tuple(r for _, r in ok), tuple(p for p, _ in ok)))
    excluded.sort(key=lambda e: str(e.file))
    return TaskRecords(spec, tuple(entries), tuple(failed), tuple(excluded))


def _drop_duplicates(
    records: list[tuple[Path, Record]], excluded: list[Excluded]
) -> list[tuple[Path, Record]]:
    """One record per (submission name, content, seed): the same run under two file names
    (a copy, a rename) counts once. The record at its canonical name wins, else the newest."""
    groups: dict[tuple[str, str, int], list[tuple[Path, Record]]] = {}
    for path, rec in records:
        key = (rec["submission"]["name"], str(rec["submission"].get("content_sha256")), rec["seed"])
        groups.setdefault(key, []).append((path, rec))
    kept = []
    for (name, _, seed), group in groups.items():
        canonical = f"{name}.seed{seed}.json"
        best = max(
            group,
            key=lambda pr: (pr[0].name == canonical, str(pr[1].get("created", "")), str(pr[0])),
        )
        kept.append(best)
        for path, _ in group:
            if path != best[0]:
                excluded.append(
                    Excluded(
                        path, f"duplicate of {best[0].name} (same submission content and seed)"
                    )
                )
    return sorted(kept, key=lambda pr: str(pr[0]))


def failure_reason(record: Record) -> str:
    error = record.get("error") or {}
    message = str(error.get("message") or f"status {record.get('status')!r} without a message")
    return message.strip().splitlines()[0] if message.strip() else "no message"


def case_tables(entries: list[Entry]) -> tuple[list[str], list[Cases]]:
    """Per-case columns of each entry's representative run, aligned on the common case ids.

    Returns the sorted common case ids and one ``{column: (n_common,) array}`` per entry. Truth
    columns must agree between entries (they were scored against the same labels).
    """
    return _aligned([(e.name, e.files[0], e.record) for e in entries])


def run_tables(entries: list[Entry]) -> tuple[list[str], list[tuple[Cases, ...]]]:
    """Per-case columns of every run (seed) of each entry, aligned on the case ids common to all
    runs of all entries: the sorted common ids and, per entry, one table per seed (seed order).

    With one seed per entry the tables are :func:`case_tables`'s.
    """
    runs = [
        (e.name if len(e.records) == 1 else f"{e.name} (seed {r['seed']})", f, r)
        for e in entries
        for f, r in zip(e.files, e.records, strict=True)
    ]
    common, flat = _aligned(runs)
    grouped, start = [], 0
    for e in entries:
        grouped.append(tuple(flat[start : start + len(e.records)]))
        start += len(e.records)
    return common, grouped


def _aligned(runs: list[tuple[str, Path, Record]]) -> tuple[list[str], list[Cases]]:
    """``(label, file, record)`` per run -> the sorted common case ids and each run's columns."""
    frames = []
    for label, file, record in runs:
        per_case = record.get("per_case") or {}
        if "case_id" not in per_case:
            raise RecordError(f"result record of {label!r} ({file}) has no per-case scores")
        frame = pd.DataFrame(per_case)
        if frame["case_id"].duplicated().any():
            raise RecordError(f"result record {file} lists a case more than once")
        frames.append(frame.set_index("case_id"))
    common = sorted(set.intersection(*(set(f.index) for f in frames))) if frames else []
    tables = []
    for frame in frames:
        aligned = frame.loc[common]
        table = {}
        for col in aligned.columns:
            values = pd.to_numeric(aligned[col], errors="coerce").to_numpy(np.float64)
            table[col] = (
                values.astype(np.int64)
                if col in _INTEGER_COLUMNS and not np.isnan(values).any()
                else values
            )
        tables.append(table)
    for col in _INTEGER_COLUMNS[:1]:
        for (label, _, _), t in zip(runs[1:], tables[1:], strict=True):
            if col in t and col in tables[0] and not np.array_equal(t[col], tables[0][col]):
                raise RecordError(
                    f"result records of {runs[0][0]!r} and {label!r} disagree on the truth of "
                    f"their common cases ({col}); they were not scored on the same labels"
                )
    return common, tables
