"""Result records: one JSON file per (task, submission, seed), written atomically, hash-sealed.

A record carries everything needed to trust and reproduce a number: the task version, split and
data hashes, the submission's content hash, seed, device, library versions and git commit, the
metrics with their confidence intervals, per-class values and per-case scores. Its
``record_sha256`` is the SHA-256 of its own canonical JSON without that field, so a hand-edited
number is detected.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medbench import __version__
from medbench.data.files import locked, remove_stale_temporaries, sha256_bytes, write_json_atomic
from medbench.errors import MedbenchError, RecordError

SCHEMA = "medbench.result/2"
SCHEMAS = ("medbench.result/1", SCHEMA)  # /1: before saved predictions, isolation, metric renames
REQUIRED = ("schema", "status", "task", "submission", "seed", "record_sha256")


@dataclass
class Record:
    """A result record as the runner builds it (``to_dict`` is what is sealed and written).

    ``task``/``submission``/``isolation`` hold what identifies the run; ``metrics`` (value and
    interval per metric), ``per_class``, ``operating_points`` and ``per_case`` (the per-case
    columns every summary is recomputed from) what it scored.
    """

    task: dict[str, Any]
    submission: dict[str, Any]
    seed: int
    device: str
    isolation: dict[str, Any]
    train: dict[str, Any]
    primary_metric: str
    higher_is_better: bool
    environment: dict[str, Any]
    status: str = "ok"
    error: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    per_class: dict[str, Any] = field(default_factory=dict)
    operating_points: dict[str, Any] = field(default_factory=dict)
    per_case: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    device_name: str = ""
    peak_gpu_memory_mb: float | None = None
    peak_memory_mb: float | None = None
    created: str = ""
    gallery: dict[str, Any] | None = None
    cost: dict[str, Any] | None = None  # medbench.cost.run_cost: what the run reported and cost
    notes: dict[str, str] = field(default_factory=dict)  # what the submission stated (ctx.note)
    train_subset: dict[str, Any] | None = None  # a run on a fraction of the training cases
    schema: str = SCHEMA

    def scored(self, fields: dict[str, Any]) -> None:
        """Take the scores: ``metrics``, ``per_class``, ``operating_points``, ``per_case``."""
        for name in ("metrics", "per_class", "operating_points", "per_case"):
            setattr(self, name, fields[name])

    def failed(self, reason: str, log_tail: str) -> None:
        self.status, self.error = "failed", {"message": reason, "log_tail": log_tail}
        self.metrics, self.per_class, self.operating_points, self.per_case = {}, {}, {}, {}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for optional in ("gallery", "train_subset", "cost"):
            if out[optional] is None:
                del out[optional]
        return out


def entry_stem(entry: str, train_fraction: float | None) -> str:
    """How a run is named in file names and events: ``cnn``, or ``cnn.frac0.25`` for a run on a
    quarter of the training cases (``--train-fraction``)."""
    return entry if train_fraction is None else f"{entry}.frac{train_fraction:g}"


def record_stem(record: dict[str, Any]) -> str:
    """:func:`entry_stem` of a record."""
    subset = record.get("train_subset") or {}
    return entry_stem(record["submission"]["name"], subset.get("fraction"))


def record_files(paths: list[Path], *, error: type[MedbenchError] = MedbenchError) -> list[Path]:
    """The record files named, and the ``*.json`` in the folders named (sorted), once each;
    ``error`` (a :class:`MedbenchError`) when there are none."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*.json") if not f.name.startswith("."))
        else:
            files.append(p)
    if not files:
        raise error(f"no result records in {', '.join(map(str, paths))}")
    seen: set[Path] = set()
    unique = []
    for f in files:
        if f.resolve() not in seen:
            seen.add(f.resolve())
            unique.append(f)
    return unique


def record_path(results_dir: str | Path, task: str, submission: str, seed: int) -> Path:
    return Path(results_dir) / task / f"{submission}.seed{seed}.json"


def canonical_json(record: dict[str, Any]) -> bytes:
    body = {k: v for k, v in record.items() if k != "record_sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def seal(record: dict[str, Any]) -> dict[str, Any]:
    """Return ``record`` with its ``record_sha256`` set."""
    record = dict(record)
    record["record_sha256"] = sha256_bytes(canonical_json(record))
    return record


def write_record(path: str | Path, record: dict[str, Any]) -> dict[str, Any]:
    """Seal and write ``record`` atomically (a crash leaves the old file or the new one)."""
    sealed = seal(record)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Under a lock on the folder, so that no other writer's temporary is in flight: sweep
        # away what a writer killed before its rename left of this record.
        with locked(path.parent):
            remove_stale_temporaries(path.parent, prefix=f".{path.name}.")
            write_json_atomic(path, sealed)
    except OSError as exc:  # a full disk, a read-only folder: say so; nothing half-written stays
        raise RecordError(f"cannot write result record {path}: {exc.strerror or exc}") from None
    return sealed


def read_record(path: str | Path, *, verify: bool = True) -> dict[str, Any]:
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"cannot read result record {path}: {exc}") from None
    if not isinstance(record, dict):
        raise RecordError(f"result record {path} is not a JSON object")
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise RecordError(f"result record {path} lacks field(s) {missing}")
    if record["schema"] not in SCHEMAS:
        raise RecordError(
            f"result record {path} has schema {record['schema']!r}; this medbench reads "
            f"{', '.join(map(repr, SCHEMAS))}"
        )
    _check_types(record, path)
    if verify:
        found = sha256_bytes(canonical_json(record))
        if found != record["record_sha256"]:
            raise RecordError(
                f"result record {path} does not match its record_sha256 (expected "
                f"{record['record_sha256']}, content hashes to {found}): it was edited after it "
                "was written. Re-run it with `medbench reproduce` instead of editing numbers."
            )
    return upgrade(record)


def upgrade(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with the metric names of this medbench (records of earlier versions named
    some metrics differently: a multi-class ``auc`` is ``macro_auc`` now). The seal stays the
    one of the record as written."""
    from medbench.metric_specs import LEGACY_NAMES

    kind = record["task"].get("kind")
    renames = {old: new for (k, old), new in LEGACY_NAMES.items() if k == kind}
    if not renames:
        return record

    def renamed(table: Any) -> Any:
        if not isinstance(table, dict):
            return table
        return {renames.get(k, k): v for k, v in table.items()}

    out = dict(record)
    out["metrics"] = renamed(record.get("metrics"))
    out["per_case"] = renamed(record.get("per_case"))
    out["per_class"] = {c: renamed(m) for c, m in (record.get("per_class") or {}).items()}
    if record.get("primary_metric") in renames:
        out["primary_metric"] = renames[record["primary_metric"]]
    return out


def _check_types(record: dict[str, Any], path: Path) -> None:
    """The fields the harness reads have the types it expects (a sealed record can still lie)."""

    def bad(field: str, wanted: str) -> RecordError:
        return RecordError(f"result record {path}: {field} must be {wanted}")

    if record["status"] not in ("ok", "failed"):
        raise bad("status", "'ok' or 'failed'")
    if not isinstance(record["seed"], int) or isinstance(record["seed"], bool):
        raise bad("seed", "an integer")
    if not isinstance(record["record_sha256"], str):
        raise bad("record_sha256", "a string")
    for table, keys in (("task", ("name",)), ("submission", ("name",))):
        value = record[table]
        if not isinstance(value, dict):
            raise bad(table, "an object")
        for key in keys:
            if not isinstance(value.get(key), str):
                raise bad(f"{table}.{key}", "a string")
    for key in ("metrics", "per_class", "per_case", "operating_points", "train"):
        if key in record and not isinstance(record[key], dict):
            raise bad(key, "an object")
    for key in ("created", "device", "primary_metric"):
        if key in record and not isinstance(record[key], str):
            raise bad(key, "a string")
    for key in (
        "environment",
        "isolation",
        "timings",
        "predictions",
        "ensemble",
        "train_subset",
        "derived",
        "cost",
        "gallery",
    ):
        if record.get(key) is not None and not isinstance(record[key], dict):
            raise bad(key, "an object")
    for name, metric in (record.get("metrics") or {}).items():
        if not isinstance(metric, dict) or not all(
            metric.get(k) is None
            or (isinstance(metric.get(k), (int, float)) and not isinstance(metric.get(k), bool))
            for k in ("value", "ci_low", "ci_high")
        ):
            raise bad(f"metrics.{name}", "an object of numbers (value, ci_low, ci_high)")
    error = record.get("error")
    if error is not None and not (
        isinstance(error, dict) and isinstance(error.get("message", ""), str)
    ):
        raise bad("error", "null or an object with a message")


def now_utc() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def git_commit(path: str | Path = ".") -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(path: str | Path = ".") -> dict[str, Any]:
    """Versions of what ran (read from package metadata: importing torch here would cost seconds)."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:  # pragma: no cover - both are dependencies
            return None

    return {
        "medbench": __version__,
        "python": platform.python_version(),
        "numpy": installed("numpy"),
        "platform": platform.platform(terse=True),
        "git_commit": git_commit(path),
        "torch": installed("torch"),
    }


def json_safe(value: Any) -> Any:
    """NaN/inf to None, numpy scalars to Python, recursively."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
