"""``medbench rescore RECORD...``: bring records up to the current task version without a re-run.

A record keeps what its numbers are made from: its saved predictions (from this version of
medbench on) and, always, the per-case columns every metric reduces (the sufficient statistics).
When a task version changes only what is computed from them (a metric added or redefined), the
record is scored again:

- with its saved predictions: validated and scored exactly as a run (every metric, operating
  points re-chosen on the saved val predictions);
- without them: each current metric whose per-case columns the record holds is summarised from
  them (a metric needing new columns cannot be, and is named).

The data the predictions were scored on must be the same (split and data hashes); otherwise
the run must be repeated (``medbench reproduce``). The new record says it was rescored, from
which record (its seal) and how; the old one is replaced atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medbench import __version__
from medbench.data.arrays import Ragged
from medbench.data.files import sha256_file
from medbench.data.prepare import prepare
from medbench.errors import MedbenchError, PredictionError, RecordError
from medbench.predictions import validate
from medbench.results import now_utc, read_record, record_files, write_record
from medbench.saved import decode
from medbench.scoring import report_fields, score_run, summarise
from medbench.tasks import TaskSpec, get_task


@dataclass(frozen=True)
class Rescored:
    path: Path
    status: str  # rescored | current | impossible
    detail: str


def rescore_record(path: str | Path, *, out: Path | None = None) -> Rescored:
    """Rescore one record for the current task version (written to ``out`` or in place)."""
    path = Path(path)
    record = read_record(path)
    spec = get_task(record["task"]["name"])
    if record["status"] != "ok":
        return Rescored(path, "impossible", "a failed run: there is nothing to rescore")
    if record["task"].get("split_sha256") != spec.split_sha256:
        return Rescored(path, "impossible", "the task's split changed: re-run it")
    prepared = prepare(spec)
    if record["task"].get("data_sha256") != prepared.data_sha256:
        return Rescored(
            path, "impossible", "the task's prepared data differs from the record's: re-run it"
        )
    if _saved(path, record) is not None:
        fields, how = _from_predictions(spec, prepared, _saved(path, record)), "saved predictions"
    else:
        fields, how = _from_columns(spec, record), "per-case columns"
    missing = [m for m in spec.metric_names if m not in fields["metrics"]]
    new = {**record, **fields}
    if record["task"].get("version") == spec.version and new == record:
        return Rescored(path, "current", f"already task version {spec.version}")
    new["task"] = {**record["task"], "version": spec.version}
    new["rescored"] = {
        "from_record_sha256": record["record_sha256"],
        "from_task_version": record["task"].get("version"),
        "with": how,
        "medbench": __version__,
        "date": now_utc(),
    }
    new.pop("record_sha256", None)
    target = Path(out) / path.parent.name / path.name if out else path
    write_record(target, new)
    note = f"; not computable from them: {', '.join(missing)}" if missing else ""
    return Rescored(target, "rescored", f"task version {spec.version} from its {how}{note}")


def _saved(path: Path, record: dict[str, Any]) -> Path | None:
    saved = record.get("predictions") or {}
    name = saved.get("file")
    if not isinstance(name, str) or "/" in name or not (path.parent / name).is_file():
        return None
    if sha256_file(path.parent / name) != saved.get("sha256"):
        raise RecordError(
            f"{path.parent / name} is not the file the record names (SHA-256 differs)"
        )
    return path.parent / name


def _from_predictions(spec: TaskSpec, prepared, file: Path) -> dict[str, Any]:
    try:
        return score_saved(spec, prepared, decode(file))
    except PredictionError as exc:
        raise RecordError(f"the saved predictions {file} do not validate: {exc}") from None


def score_saved(spec: TaskSpec, prepared, splits: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
    """Saved-style predictions (``{split: (case ids, predictions)}``) validated and scored
    exactly as a run's: the record fields. A prediction that does not validate raises
    :class:`PredictionError` (a missing split or a case-id mismatch too)."""
    preds, truth = {}, {}
    for split in ("test", "val"):
        truth[split] = prepared.targets(split)
        shapes = truth[split].shapes() if isinstance(truth[split], Ragged) else None
        if split not in splits:
            raise PredictionError(f"no {split} predictions")
        ids, values = splits[split]
        if len(ids) != len(values):
            raise PredictionError(f"{len(ids)} {split} case ids for {len(values)} predictions")
        case_ids = prepared.split(split, with_targets=False).case_ids
        preds[split] = validate(spec, dict(zip(ids, values, strict=True)), case_ids, shapes=shapes)
    cases = prepared.split("test", with_targets=False).cases
    return report_fields(score_run(spec, preds, truth, cases))


def _from_columns(spec: TaskSpec, record: dict[str, Any]) -> dict[str, Any]:
    per_case = record.get("per_case") or {}
    if "case_id" not in per_case:
        raise MedbenchError(
            f"the record of {record['submission']['name']!r} has no per-case scores"
        )
    columns = {
        k: np.array([np.nan if v is None else v for v in values], np.float64)
        for k, values in per_case.items()
        if k != "case_id"
    }
    for k in ("y_true", "y_pred"):  # labels stay integers
        if k in columns and not np.isnan(columns[k]).any():
            columns[k] = columns[k].astype(np.int64)
    cases = pd.DataFrame({"case_id": per_case["case_id"]})
    usable = []
    for name in spec.metric_names:
        try:
            summarise(spec, columns, cases, n_resamples=0, metrics=(name,))
            usable.append(name)
        except KeyError:  # the metric needs a column the record does not hold
            continue
    fields = report_fields(summarise(spec, columns, cases, metrics=tuple(usable)))
    # Operating points cannot be re-chosen without val predictions: the recorded ones stay.
    fields["operating_points"] = record.get("operating_points") or {}
    return fields


def rescore_records(paths: list[Path], *, out: Path | None = None) -> list[Rescored]:
    files = record_files(paths)
    results = []
    for f in files:
        try:
            results.append(rescore_record(f, out=out))
        except MedbenchError as exc:
            results.append(Rescored(f, "impossible", f"{type(exc).__name__}: {exc}"))
    return results
