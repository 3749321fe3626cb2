"""What every export format reads: a verified, scored record and the spec of its task."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medbench import results
from medbench.errors import ExportError, MedbenchError, RecordError
from medbench.leaderboard.export import rounded
from medbench.results import read_record
from medbench.tasks import TaskSpec, get_task

# A task or submission name becomes part of a file name: a record (sealed, but written by
# anyone who can write the results folder) must not send an export outside --out.
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


@dataclass(frozen=True)
class Source:
    """A record with ``status: ok`` whose per-case columns are complete, and its task's spec."""

    path: Path
    record: dict[str, Any]
    spec: TaskSpec

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def stem(self) -> str:
        """``<task>.<submission>.seed<N>`` (``<submission>.frac<F>`` for a run on a training
        fraction): the start of every file exported from this record."""
        r = self.record
        return f"{r['task']['name']}.{results.record_stem(r)}.seed{r['seed']}"

    @property
    def case_ids(self) -> list[str]:
        return [str(c) for c in self.record["per_case"]["case_id"]]

    def column(self, name: str) -> list[Any]:
        """The per-case column ``name``, one value per test case (None: undefined)."""
        per_case = self.record["per_case"]
        if name not in per_case:
            raise RecordError(
                f"result record {self.path} has no per-case column {name!r} (it has "
                f"{', '.join(k for k in per_case if k != 'case_id')})"
            )
        return per_case[name]

    def metrics(self) -> list[tuple[str, dict[str, Any]]]:
        """The record's metrics, in the task's order (a name the task no longer reports last)."""
        recorded = self.record.get("metrics") or {}
        order = [m for m in self.spec.metric_names if m in recorded]
        return [(m, recorded[m]) for m in order + [m for m in recorded if m not in order]]


def load_source(path: str | Path) -> Source:
    """Read and check one record: sealed (``read_record``), scored, per-case columns complete."""
    path = Path(path)
    record = read_record(path)
    if record["status"] != "ok":
        reason = (record.get("error") or {}).get("message", "no reason recorded")
        raise ExportError(f"result record {path} is a failed run ({reason}): it has no scores")
    for part, value in (
        ("task", record["task"]["name"]),
        ("submission", record["submission"]["name"]),
    ):
        if not PLAIN_NAME.fullmatch(value) or ".." in value:
            raise RecordError(f"result record {path}: {part} name {value!r} is not a plain name")
    try:
        spec = get_task(record["task"]["name"])
    except MedbenchError as exc:
        raise RecordError(f"result record {path}: {exc}") from None
    if record["task"].get("kind", spec.kind) != spec.kind:
        raise RecordError(
            f"result record {path} is of a {record['task']['kind']} task; "
            f"{spec.name} is {spec.kind} now"
        )
    _check_per_case(path, record)
    return Source(path, record, spec)


def _check_per_case(path: Path, record: dict[str, Any]) -> None:
    per_case = record["per_case"]
    ids = per_case.get("case_id")
    if not isinstance(ids, list) or not ids:
        raise RecordError(f"result record {path} has no per-case scores (per_case.case_id)")
    lengths = {k: len(v) if isinstance(v, list) else None for k, v in per_case.items()}
    uneven = {k: n for k, n in lengths.items() if n != len(ids)}
    if uneven:
        raise RecordError(
            f"result record {path}: every per-case column must have {len(ids)} values (one per "
            f"case_id); got {uneven}"
        )
    n_test = record["task"].get("n_test")
    if n_test is not None and n_test != len(ids):
        raise RecordError(
            f"result record {path} scores {len(ids)} cases; its task has n_test = {n_test}"
        )
    if len(set(map(str, ids))) != len(ids):
        raise RecordError(f"result record {path} lists a case id more than once")


def record_files(paths: list[Path]) -> list[Path]:
    """The record files named, and those in the folders named (``*.json``, sorted), once each."""
    return results.record_files(paths, error=ExportError)


def cell(value: Any) -> Any:
    """A per-case value as exported: floats rounded to 6 decimals (undefined: None), the rest
    as recorded (integers stay integers)."""
    if isinstance(value, float):
        return rounded(value)
    return value
