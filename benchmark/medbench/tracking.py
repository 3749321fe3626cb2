"""Experiment tracking in MLflow (``medbench run --mlflow URI``), done by the parent alone.

The child runs without a network, so nothing is logged from it. What is logged comes from the
sealed record, read back once it is written (the effective ``[train]`` table as params, the test
metrics with their intervals, tags naming every hash, the record and the files beside it as
artifacts), and from the child's epoch events (training loss, validation metric and learning
rate per epoch). Those events are untrusted data: checked, bounded, and filed under the run the
runner started (it stamps each one), never the run the child names. A run is logged after its
record is written, so a tracking failure never costs a record; running the same command again
logs the records then skipped as done. MLflow is imported here only, and only when asked for.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medbench.errors import TrackingError
from medbench.results import read_record, record_stem

DEFAULT_EXPERIMENT = "medbench/{task}"
INSTALL = 'pip install "medbench[mlflow]" (or pip install mlflow)'
# MLflow's limits (mlflow.utils.validation, 3.x): longer keys are refused, longer values cut.
MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_PER_BATCH = {"params": 100, "tags": 100, "metrics": 1000}
MAX_EPOCHS = 10_000  # epoch points kept per run: a child cannot fill the parent's memory
PROBE_TIMEOUT_S = 10.0
SEAL_TAG = "medbench.record_sha256"  # set last: a run that carries it was logged whole

RunKey = tuple[str, str, int]  # (task, leaderboard entry, seed)


# --- what a record becomes in MLflow (pure) ------------------------------------------------------


def safe_key(name: str) -> str:
    """``name`` as an MLflow key: letters, digits, ``_``, ``-``, and ``.`` between parts; at most
    250 characters (a longer one ends in a hash of the whole)."""
    parts = [re.sub(r"[^A-Za-z0-9_\-]", "_", part) or "_" for part in str(name).split(".")]
    key = ".".join(parts)
    if len(key) > MAX_KEY:
        key = f"{key[: MAX_KEY - 9]}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    return key


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying so (the record keeps the whole value)."""
    if len(text) <= limit:
        return text
    mark = " [... cut to MLflow's limit; the whole value is in the record]"
    return text[: limit - len(mark)] + mark


def _text(value: Any) -> str:
    """A ``[train]`` value as TOML would write it: strings as they are, else JSON (``true``,
    ``0.001``, ``[1, 2]``)."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _unique(key: str, taken: dict[str, Any]) -> str:
    """``key``, or ``key-2``, ``key-3``... when two names sanitise to the same key."""
    n, candidate = 1, key
    while candidate in taken:
        n += 1
        candidate = f"{key[: MAX_KEY - 1 - len(str(n))]}-{n}"
    return candidate


def flatten_params(train: dict[str, Any]) -> dict[str, str]:
    """The effective ``[train]`` table as MLflow params: inline tables flattened (``aug.flip``),
    values as text (:func:`_text`), keys and lengths within MLflow's limits."""
    out: dict[str, str] = {}

    def walk(prefix: str, table: dict[str, Any]) -> None:
        for name, value in table.items():
            if isinstance(value, dict) and value:
                walk(f"{prefix}{name}.", value)
            else:
                out[_unique(safe_key(f"{prefix}{name}"), out)] = clip(_text(value), MAX_PARAM_VALUE)

    walk("", train)
    return out


def _number(value: Any) -> float | None:
    """A metric value as MLflow should store it; None if ``value`` is not a number.

    Undefined and infinite values become NaN: MLflow would store +-inf as +-1.8e308, a number
    that reads as real."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else math.nan


def record_metrics(record: dict[str, Any]) -> dict[str, float]:
    """A record's test metrics with their 95 % intervals (``auc``, ``auc_ci_low``,
    ``auc_ci_high``), per class (``dice_disc``, ``dice_disc_ci_low``...), its timings
    (``time_fit_s``...) and peak memory. An undefined value is NaN; a missing interval is left
    out."""
    out: dict[str, float] = {}

    def put(name: str, entry: Any) -> None:
        if not isinstance(entry, dict):
            return
        value = _number(entry.get("value"))
        if value is not None:
            out[safe_key(name)] = value
        for bound in ("ci_low", "ci_high"):
            if entry.get(bound) is not None and (v := _number(entry[bound])) is not None:
                out[safe_key(f"{name}_{bound}")] = v

    for name, entry in (record.get("metrics") or {}).items():
        put(name, entry)
    for cls, metrics in (record.get("per_class") or {}).items():
        for name, entry in (metrics if isinstance(metrics, dict) else {}).items():
            put(f"{name}_{cls}", entry)
    for name, seconds in (record.get("timings") or {}).items():
        if seconds is not None and (v := _number(seconds)) is not None:
            out[safe_key(f"time_{name}")] = v
    for name in ("peak_memory_mb", "peak_gpu_memory_mb"):
        if record.get(name) is not None and (v := _number(record[name])) is not None:
            out[name] = v
    return out


def record_tags(record: dict[str, Any], path: Path) -> dict[str, str]:
    """The tags that say what ran on what: task, version and hashes, submission and its content
    hash, seed, device, isolation, status, medbench version and commit, and the record's seal."""
    task, sub = record.get("task") or {}, record.get("submission") or {}
    env = record.get("environment") or {}
    tags = {
        "medbench.task": task.get("name"),
        "medbench.task_version": task.get("version"),
        "medbench.split_sha256": task.get("split_sha256"),
        "medbench.data_sha256": task.get("data_sha256"),
        "medbench.submission": sub.get("name"),
        "medbench.submission_content_sha256": sub.get("content_sha256"),
        "medbench.variant": sub.get("variant"),
        "medbench.seed": record.get("seed"),
        "medbench.device": record.get("device"),
        "medbench.device_name": record.get("device_name") or None,
        "medbench.isolation": (record.get("isolation") or {}).get("mode"),
        "medbench.status": record.get("status"),
        "medbench.primary_metric": record.get("primary_metric"),
        "medbench.error": (record.get("error") or {}).get("message"),
        "medbench.version": env.get("medbench"),
        "medbench.git_commit": env.get("git_commit"),
        "medbench.record": str(path),
        "mlflow.note.content": sub.get("summary") or None,  # the run's description in the UI
        SEAL_TAG: record.get("record_sha256"),
    }
    return {k: clip(str(v), MAX_TAG_VALUE) for k, v in tags.items() if v is not None}


def record_key(record: dict[str, Any]) -> RunKey:
    return (record["task"]["name"], record_stem(record), int(record["seed"]))


def run_name(key: RunKey) -> str:
    """``unet/toy-anatomy/seed0``: how the command line names a run."""
    task, entry, seed = key
    return f"{entry}/{task}/seed{seed}"


def experiment_name(experiment: str | None, task: str) -> str:
    return experiment if experiment is not None else DEFAULT_EXPERIMENT.format(task=task)


# --- epoch curves, from the events of runs that may run concurrently ------------------------------


def event_key(event: dict[str, Any]) -> RunKey | None:
    """The run an event belongs to, as the runner stamped it (None: not a run's event)."""
    task, entry, seed = event.get("task"), event.get("submission"), event.get("seed")
    if not isinstance(task, str) or not isinstance(entry, str):
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        return None
    return (task, entry, seed)


def epoch_point(event: dict[str, Any]) -> tuple[int, dict[str, float]] | None:
    """``(epoch, {"train_loss": ..., "val_dice": ..., "train_lr": ...})`` from a child's epoch
    event, or None when it holds no usable point (the child's data is checked, not trusted)."""
    epoch = event.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= 10**9:
        return None
    metric = event.get("metric")
    named = isinstance(metric, str) and re.fullmatch(r"[A-Za-z0-9_]{1,64}", metric)
    val = f"val_{metric}" if named else "val_metric"
    values = {}
    for key, name in (("train_loss", "loss"), (val, "val_metric"), ("train_lr", "lr")):
        if event.get(name) is not None and (v := _number(event[name])) is not None:
            values[key] = v
    return (epoch, values) if values else None


@dataclass
class _Curves:
    started_ms: int
    points: dict[int, tuple[int, dict[str, float]]] = field(default_factory=dict)
    dropped: int = 0


class EpochCurves:
    """Each run's epoch curves, from the runner's start events and the child's epoch events.

    Concurrent runs (``--executor process``) share one listener, and events arrive on the
    threads that read each child: points are filed by (task, submission, seed), which the runner
    stamps on every event of a child, so two runs' curves never mix. Per epoch the last point
    counts; at most ``max_epochs`` epochs are kept per run.
    """

    def __init__(self, max_epochs: int = MAX_EPOCHS) -> None:
        self.max_epochs = max_epochs
        self._lock = threading.Lock()
        self._runs: dict[RunKey, _Curves] = {}

    def add(self, event: dict[str, Any]) -> None:
        key = event_key(event)
        if key is None:
            return
        now = _now_ms()
        with self._lock:
            if event.get("event") == "start":
                self._runs[key] = _Curves(started_ms=now)  # a new run starts a fresh curve
                return
            if event.get("event") != "epoch" or (point := epoch_point(event)) is None:
                return
            curves = self._runs.setdefault(key, _Curves(started_ms=now))
            epoch, values = point
            if epoch in curves.points or len(curves.points) < self.max_epochs:
                curves.points[epoch] = (now, values)
            else:
                curves.dropped += 1

    def pop(self, key: RunKey) -> tuple[int | None, list[tuple[str, float, int, int]]]:
        """(the run's start time in ms, or None; its points as (metric, value, ms, epoch))."""
        with self._lock:
            curves = self._runs.pop(key, None)
        if curves is None:
            return None, []
        points = [
            (name, value, ms, epoch)
            for epoch, (ms, values) in sorted(curves.points.items())
            for name, value in values.items()
        ]
        return curves.started_ms, points


def _now_ms() -> int:
    return int(time.time() * 1000)


# --- MLflow --------------------------------------------------------------------------------------


def _import_mlflow():
    """Import MLflow without leaving anything in the environment: its import sets a variable
    (a telemetry session id) that an unsandboxed child would otherwise inherit."""
    saved = dict(os.environ)
    try:
        import mlflow.entities
        import mlflow.tracking
    except ImportError as exc:
        raise TrackingError(f"--mlflow needs MLflow ({exc}): {INSTALL}") from None
    finally:
        for name in set(os.environ) - set(saved):
            del os.environ[name]
        os.environ.update({k: v for k, v in saved.items() if os.environ.get(k) != v})
    return mlflow


def _describe(exc: BaseException) -> str:
    """An MLflow or HTTP error on one line, cut to a readable length."""
    text = " ".join(str(exc).split()) or repr(exc)
    text = text if len(text) <= 300 else text[:300] + " [...]"
    return f"{type(exc).__name__}: {text}"


def is_http(uri: str) -> bool:
    return urllib.parse.urlsplit(uri).scheme in ("http", "https")


def probe(uri: str, experiment: str, *, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise :class:`TrackingError` unless an HTTP server answers at ``uri``, within ``timeout``.

    MLflow's client retries a refused connection for minutes: this one request says at once
    whether anyone is there. Any answer below 500 counts (404: no such experiment yet; 401/403:
    MLflow's client sends the credentials), and so does a TLS error (MLflow has its own TLS
    settings); a refused or timed-out connection, an unknown host or a 5xx answer do not.
    """
    query = urllib.parse.urlencode({"experiment_name": experiment})
    url = f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/get-by-name?{query}"
    hint = "start one (mlflow server --host 127.0.0.1 --port 5000) or check --mlflow"
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code < 500:
            return
        raise TrackingError(
            f"the MLflow tracking server at {uri} answered HTTP {exc.code} {exc.reason}"
        ) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, OSError) and "SSL" in type(exc.reason).__name__:
            return
        raise TrackingError(
            f"cannot reach the MLflow tracking server at {uri}: {exc.reason}; {hint}"
        ) from None
    except (OSError, ValueError) as exc:  # a timeout while reading, a malformed URL
        raise TrackingError(
            f"cannot reach the MLflow tracking server at {uri}: {exc or type(exc).__name__}; {hint}"
        ) from None


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


TRACKED_STATUSES = ("ok", "failed", "skipped")  # the outcomes with a record ("error" has none)


@dataclass(frozen=True)
class Tracked:
    name: str  # unet/toy-anatomy/seed0
    run_id: str
    where: str  # the run's page (an http server), else "run ID in experiment NAME"
    already: bool = False  # logged before (a skipped run whose record MLflow already had)


@dataclass(frozen=True)
class NotTracked:
    name: str
    record: Path
    reason: str


class MlflowTracker:
    """An ``on_event`` listener that logs each run to MLflow once its record is written.

    It never raises into the run: a failure to log is kept in :attr:`failures` for the command
    line to report, and the run's record stays as it was written.
    """

    def __init__(self, mlflow, client, uri: str, experiments: dict[str, tuple[str, str]]) -> None:
        self.mlflow, self.client, self.uri = mlflow, client, uri
        self.experiments = experiments  # task -> (name, id)
        self.curves = EpochCurves()
        self.tracked: list[Tracked] = []
        self.failures: list[NotTracked] = []
        self._lock = threading.Lock()  # one run logged at a time; runs end on several threads

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind in ("start", "epoch"):
            self.curves.add(event)
        elif kind == "done" and event.get("path") and event.get("status") in TRACKED_STATUSES:
            self.log(Path(event["path"]), skipped=event["status"] == "skipped")

    def log(self, path: Path, *, skipped: bool = False) -> Tracked | None:
        """Log the record at ``path`` (with the epoch curves collected for its run)."""
        name = path.name
        try:
            record = read_record(path)
            key = record_key(record)
            name = run_name(key)
            started, points = self.curves.pop(key)
            with self._lock:
                if is_http(self.uri):
                    probe(self.uri, self.experiments.get(key[0], ("medbench", ""))[0])
                tracked = self._log(record, path, key, started, points, skipped)
                self.tracked.append(tracked)
            return tracked
        except Exception as exc:  # whatever MLflow raises: the record is safe, say why
            reason = str(exc) if isinstance(exc, TrackingError) else _describe(exc)
            with self._lock:
                self.failures.append(NotTracked(name, path, reason))
            return None

    def _log(self, record, path, key, started, points, skipped) -> Tracked:
        client, entities = self.client, self.mlflow.entities
        experiment, experiment_id = self._experiment(key[0])
        seal = record["record_sha256"]
        if skipped:  # recorded earlier: log it unless MLflow has it already
            found = client.search_runs(
                [experiment_id], filter_string=f"tags.`{SEAL_TAG}` = '{seal}'", max_results=1
            )
            if found:
                run_id = found[0].info.run_id
                where = self._where(experiment, experiment_id, run_id)
                return Tracked(run_name(key), run_id, where, already=True)
        tags = record_tags(record, path)
        del tags[SEAL_TAG]
        run = client.create_run(
            experiment_id, start_time=started, tags=tags, run_name=run_name(key)
        )
        run_id = run.info.run_id
        try:
            train = flatten_params(record.get("train") or {})
            params = [entities.Param(k, v) for k, v in train.items()]
            for chunk in _chunks(params, MAX_PER_BATCH["params"]):
                client.log_batch(run_id, params=chunk)
            now = _now_ms()
            metrics = [entities.Metric(k, v, now, 0) for k, v in record_metrics(record).items()]
            metrics += [entities.Metric(k, v, ms, epoch) for k, v, ms, epoch in points]
            for chunk in _chunks(metrics, MAX_PER_BATCH["metrics"]):
                client.log_batch(run_id, metrics=chunk)
            for file in _artifacts(record, path):
                client.log_artifact(run_id, str(file))
            client.set_tag(run_id, SEAL_TAG, seal)
            # MLflow prints the run's page to stdout here; the command line says it in its place.
            with contextlib.redirect_stdout(io.StringIO()):
                client.set_terminated(run_id, "FINISHED" if record["status"] == "ok" else "FAILED")
        except BaseException:
            with contextlib.suppress(Exception):  # no half-logged run left in the list
                client.delete_run(run_id)
            raise
        return Tracked(run_name(key), run_id, self._where(experiment, experiment_id, run_id))

    def _experiment(self, task: str) -> tuple[str, str]:
        if task not in self.experiments:  # a task not planned (cannot happen from the CLI)
            name = experiment_name(None, task)
            self.experiments[task] = (name, find_experiment(self.client, name, self.uri))
        return self.experiments[task]

    def _where(self, experiment: str, experiment_id: str, run_id: str) -> str:
        if is_http(self.uri):
            return f"{self.uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
        return f"run {run_id} in experiment {experiment!r} at {self.uri}"

    def failure_line(self) -> str:
        """One line for all failures: how many, the first reason, and how to log them later."""
        first, n = self.failures[0], len(self.failures)
        return (
            f"TrackingError: MLflow tracking at {self.uri} failed for {n} of {n + len(self.tracked)} run(s) "
            f"(first {first.name}: {first.reason}); their records are written "
            f"({first.record}{' ...' if n > 1 else ''}): run the same command again, without "
            "--force, to log them (without their epoch curves)"
        )


def _artifacts(record: dict[str, Any], path: Path) -> list[Path]:
    """The record and the files it names beside it (saved predictions, the worst-case figure)."""
    files = [path]
    for entry in (record.get("predictions"), record.get("gallery")):
        name = (entry or {}).get("file")
        if isinstance(name, str) and name and Path(name).name == name:
            if (path.parent / name).is_file():
                files.append(path.parent / name)
    return files


def find_experiment(client, name: str, uri: str) -> str:
    """The id of experiment ``name``, created if it does not exist."""
    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return client.create_experiment(name)
        except Exception:  # another medbench created it meanwhile
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    if found.lifecycle_stage != "active":
        raise TrackingError(
            f"MLflow experiment {name!r} at {uri} is deleted: restore it (mlflow experiments "
            f"restore --experiment-id {found.experiment_id}) or choose another --mlflow-experiment"
        )
    return found.experiment_id


def open_tracker(uri: str, *, experiment: str | None, tasks: Sequence[str]) -> MlflowTracker:
    """Import MLflow, check that ``uri`` answers and find or create the experiments of ``tasks``:
    before any training starts, so a wrong URI costs nothing."""
    if not uri.strip():
        raise TrackingError("--mlflow takes a tracking URI, e.g. http://127.0.0.1:5000; got ''")
    if experiment is not None and not experiment.strip():
        raise TrackingError("--mlflow-experiment takes a name; got ''")
    mlflow = _import_mlflow()
    names = {task: experiment_name(experiment, task) for task in tasks}
    if is_http(uri):
        probe(uri, next(iter(names.values()), "medbench"))
    try:
        client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    except Exception as exc:  # an unknown scheme, a malformed store URI
        raise TrackingError(f"MLflow cannot use the tracking URI {uri}: {_describe(exc)}") from None
    ids = {}
    for name in sorted(set(names.values())):
        try:
            ids[name] = find_experiment(client, name, uri)
        except TrackingError:
            raise
        except Exception as exc:  # MLflow's own errors, an HTTP error, a store it cannot open
            raise TrackingError(
                f"MLflow at {uri} could not find or create experiment {name!r}: {_describe(exc)}"
            ) from None
    return MlflowTracker(mlflow, client, uri, {t: (n, ids[n]) for t, n in names.items()})
