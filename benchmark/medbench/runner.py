"""One run = (submission, task, seed): prepare -> fit/predict in a child process -> score -> record.

The parent never hands test labels to the child: the child gets the train and validation splits
and a copy of the test images (no labels) in the run folder. Every failure of the submission (an
exception, a crash, a timeout, invalid predictions, writing into the prepared cache) becomes a
record with ``status: failed``, its reason and the tail of the child's log.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medbench import __version__
from medbench.data.arrays import Ragged, save_array
from medbench.data.files import (
    locked,
    remove_stale_temporaries,
    sha256_bytes,
    write_bytes_atomic,
    write_json_atomic,
)
from medbench.data.prepare import PreparedTask, prepare
from medbench.data.sources import medbench_home
from medbench.errors import MedbenchError, PredictionError, SubmissionError
from medbench.gallery import worst_cases_png
from medbench.predictions import read_predictions, validate
from medbench.results import environment, json_safe, now_utc, read_record, record_path, write_record
from medbench.scoring import score
from medbench.submission.loader import Manifest, content_hash, read_manifest
from medbench.tasks import TaskSpec, get_task

Event = Callable[[dict[str, Any]], None]
LOG_LIMIT = 20 * 2**20  # bytes of child output kept in child.log; the rest is counted, not kept
TAIL_LINES = 40
DEFAULT_RESULTS = Path("leaderboards") / "results"


@dataclass(frozen=True)
class Run:
    submission: Path
    task: str
    seed: int


@dataclass
class RunOptions:
    device: str | None = None
    timeout: float | None = None
    resume: bool = False
    force: bool = False
    results_dir: Path = DEFAULT_RESULTS
    memory_limit_mb: int | None = None
    train_overrides: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the child
    # CPU threads of the child. Fixed whatever the executor (Ray sets 1 per task, for one), since
    # float sums on a CPU depend on the thread count: same threads, same seed, same record.
    threads: int | None = None

    def child_threads(self) -> int:
        return self.threads or os.cpu_count() or 1


@dataclass
class Outcome:
    run: Run
    status: str  # ok | failed | skipped | error (harness-side, no record)
    record: dict[str, Any] | None = None
    path: Path | None = None
    message: str = ""


def default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover
        return "cpu"


def plan(
    paths: Sequence[str | Path], tasks: Sequence[str] = (), seeds: Sequence[int] = (0,)
) -> list[Run]:
    """Every (submission, task, seed) to run; ``tasks`` filters those each manifest enters."""
    for t in tasks:
        get_task(t)  # unknown names fail early, with suggestions
    runs = []
    for p in paths:
        manifest = read_manifest(p)
        chosen = [t for t in manifest.tasks if not tasks or t in tasks]
        if tasks and not chosen:
            raise SubmissionError(
                f"submission {manifest.name!r} enters {list(manifest.tasks)}, none of {list(tasks)}"
            )
        runs += [Run(Path(p), t, s) for t in chosen for s in seeds]
    return runs


def run_folder(manifest: Manifest, digest: str, spec: TaskSpec, seed: int) -> Path:
    return medbench_home() / "runs" / spec.name / f"{manifest.name}-{digest[:12]}" / f"seed{seed}"


def _same_run(
    record: dict[str, Any],
    digest: str,
    spec: TaskSpec,
    data_sha: str,
    seed: int,
    train: dict[str, Any],
    device: str,
) -> bool:
    """Whether ``record`` is this run: same content, task version, data, seed, medbench version,
    and also the same effective ``[train]`` table (``--set`` overrides) and kind of device."""
    return (
        record.get("status") == "ok"
        and record["submission"].get("content_sha256") == digest
        and record["task"].get("version") == spec.version
        and record["task"].get("data_sha256") == data_sha
        and record.get("seed") == seed
        and record.get("environment", {}).get("medbench") == __version__
        and record.get("train") == json_safe(train)
        and str(record.get("device", "")).split(":")[0] == device.split(":")[0]
    )


def _write_test_input(split, folder: Path) -> None:
    """A copy of the test images and their ids, outside the prepared cache (no path to labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    images = split.images
    copy = (
        Ragged(np.array(images.data), np.array(images.index))
        if isinstance(images, Ragged)
        else np.array(images)
    )
    save_array(folder, "images", copy)
    pd.DataFrame({"case_id": list(split.case_ids)}).to_csv(
        folder / "cases.csv", index=False, lineterminator="\n"
    )


class _ChildOutput:
    """Read the child's merged stdout/stderr: keep a bounded log, a tail, and forward events."""

    def __init__(self, stream, log_path: Path, on_event: Event | None) -> None:
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.dropped = 0
        self._stream, self._log_path, self._on_event = stream, log_path, on_event
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        from medbench.child import EVENT

        written = 0
        with open(self._log_path, "ab") as log:
            for raw in iter(self._stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if line.startswith(EVENT):
                    if self._on_event:
                        try:
                            self._on_event(json.loads(line[len(EVENT) :]))
                        except Exception:  # a progress bar must not kill a run
                            pass
                    continue
                self.tail.append(line[:500])
                if written < LOG_LIMIT:
                    log.write(raw)
                    log.flush()  # so `tail -f child.log` follows a run line by line
                    written += len(raw)
                else:
                    self.dropped += len(raw)
            if self.dropped:
                log.write(f"\n[medbench: {self.dropped} more bytes of output not kept]\n".encode())

    def text(self) -> str:
        return "\n".join(self.tail)


def _limit_memory(limit_mb: int | None) -> Callable[[], None] | None:
    if not limit_mb:
        return None

    def apply() -> None:
        import resource

        limit = limit_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def _run_child(
    job_path: Path, folder: Path, options: RunOptions, on_event: Event | None
) -> tuple[int | None, str, str]:
    """Run the child; return (return code or None on timeout, log tail, reason)."""
    threads = str(options.child_threads())
    env = {
        **os.environ,
        **options.env,
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "MEDBENCH_THREADS": threads,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "medbench.child", str(job_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
        preexec_fn=_limit_memory(options.memory_limit_mb),
    )
    output = _ChildOutput(proc.stdout, folder / "child.log", on_event)
    try:
        code = proc.wait(timeout=options.timeout)
        reason = ""
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        code, reason = None, f"timed out after {options.timeout:g} s (the child was killed)"
    except BaseException:
        _kill_group(proc)
        raise
    output.thread.join(timeout=10)
    return code, output.text(), reason


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _failure_reason(code: int, output: Path) -> str:
    error_file = output / "child-error.json"
    if error_file.is_file():
        err = json.loads(error_file.read_text())
        return f"{err['type']}: {err['message']}"
    if code < 0:
        name = (
            signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        )
        return f"the child process was killed by signal {name}"
    return f"the child process exited with code {code}"


def already_done(run: Run, options: RunOptions) -> Outcome | None:
    """The recorded outcome if an identical run (content, task version, data, seed, medbench
    version) is already recorded and ``--force`` is not set; else None."""
    if options.force:
        return None
    manifest = read_manifest(run.submission)
    spec = get_task(run.task)
    target = record_path(options.results_dir, spec.name, manifest.name, run.seed)
    if not target.is_file():
        return None
    try:
        old = read_record(target)
    except MedbenchError:
        return None
    prepared = prepare(spec)
    train = {**manifest.train_for(spec.name), **options.train_overrides}
    device = options.device or default_device()
    if _same_run(
        old, content_hash(run.submission), spec, prepared.data_sha256, run.seed, train, device
    ):
        return Outcome(
            run, "skipped", old, target, "already done with the same content, task, data and seed"
        )
    return None


def execute(run: Run, options: RunOptions, on_event: Event | None = None) -> Outcome:
    """Run one (submission, task, seed) and write its record. Harness-side errors raise."""
    done = already_done(run, options)
    if done is not None:
        return done
    outcome = compute(run, options, on_event)
    return write_outcome(outcome)


def write_outcome(outcome: Outcome) -> Outcome:
    """Seal and write an outcome's record (atomically); the driver of every executor does this."""
    if (
        outcome.status in ("ok", "failed")
        and outcome.record is not None
        and outcome.path is not None
    ):
        outcome.record = write_record(outcome.path, outcome.record)
    return outcome


def compute(run: Run, options: RunOptions, on_event: Event | None = None) -> Outcome:
    """Fit, predict and score one run; return its (unsealed, unwritten) record."""
    started = time.perf_counter()
    manifest = read_manifest(run.submission)
    spec = get_task(run.task)
    if spec.name not in manifest.tasks:
        raise SubmissionError(f"submission {manifest.name!r} does not enter task {spec.name!r}")
    digest = content_hash(run.submission)
    folder = run_folder(manifest, digest, spec, run.seed)
    # Two processes running the same (submission, task, seed) share this folder and would delete
    # each other's inputs and predictions mid-run: the second waits for the first.
    with locked(folder.with_name(f"{folder.name}.lock")):
        return _compute(run, options, on_event, started, manifest, spec, digest, folder)


def _compute(run, options, on_event, started, manifest, spec, digest, folder) -> Outcome:
    t0 = time.perf_counter()
    prepared = prepare(spec)
    prepared.verify()
    prepare_s = time.perf_counter() - t0
    target = record_path(options.results_dir, spec.name, manifest.name, run.seed)
    device = options.device or default_device()
    if not options.resume and folder.exists():
        shutil.rmtree(folder)
    output = folder / "output"
    for sub in ("output", "work"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for stale in ("child-error.json", "child-result.json"):
        (output / stale).unlink(missing_ok=True)
    remove_stale_temporaries(output)
    test = prepared.split("test")
    _write_test_input(prepared.split("test", with_targets=False), folder / "input" / "test")
    job = {
        "submission": str(Path(run.submission).resolve()),
        "task": spec.name,
        "seed": run.seed,
        "device": device,
        "resume": options.resume,
        "train_overrides": options.train_overrides,
        "train": str(prepared.path / "train"),
        "val": str(prepared.path / "val"),
        "test": str(folder / "input" / "test"),
        "workdir": str(folder / "work"),
        "output": str(output),
    }
    job_path = folder / "job.json"
    write_json_atomic(job_path, job)
    if on_event:
        on_event(
            {
                "event": "start",
                "task": spec.name,
                "submission": manifest.name,
                "seed": run.seed,
                "device": device,
            }
        )
    code, tail, reason = _run_child(job_path, folder, options, on_event)
    base = _base_record(manifest, digest, spec, prepared, run.seed, device, options)
    timings = {"prepare_s": round(prepare_s, 3)}
    child_info: dict[str, Any] = {}
    if code == 0 and (output / "child-result.json").is_file():
        child_info = json.loads((output / "child-result.json").read_text())
        timings.update(
            {k: round(child_info[k], 3) for k in ("fit_s", "predict_s") if k in child_info}
        )
    try:
        prepared.verify()  # a submission that wrote into the cache fails, and the cache is rebuilt
    except MedbenchError as exc:
        prepare(spec, force=True)
        reason = reason or f"the submission changed the prepared data cache: {exc}"
        code = code if code else 1
    if code != 0 or reason:
        reason = reason or _failure_reason(code, output)
        return _finish(target, run, base, "failed", reason, tail, timings, child_info, started)
    try:
        t0 = time.perf_counter()
        report, preds = _score(spec, prepared, test, output)
        timings["score_s"] = round(time.perf_counter() - t0, 3)
    except PredictionError as exc:
        return _finish(
            target,
            run,
            base,
            "failed",
            f"invalid predictions: {exc}",
            tail,
            timings,
            child_info,
            started,
        )
    if spec.kind in ("multilabel-segmentation", "instance-segmentation"):
        png = worst_cases_png(
            test.images,
            test.targets,
            preds,
            report.per_case[spec.primary_metric].to_numpy(),
            test.case_ids,
            metric=spec.primary_metric,
            higher_is_better=spec.primary.higher_is_better,
        )
        if png is not None:
            gallery = target.with_suffix(".worst.png")
            write_bytes_atomic(gallery, png)
            base["gallery"] = {"file": gallery.name, "sha256": sha256_bytes(png)}
    base.update(
        metrics={k: v.to_dict() for k, v in report.summary.items()},
        per_class={c: {k: v.to_dict() for k, v in m.items()} for c, m in report.per_class.items()},
        operating_points=json_safe(report.operating_points),
        per_case=report.to_dict()["per_case"],
    )
    return _finish(target, run, base, "ok", "", tail, timings, child_info, started)


def _score(spec: TaskSpec, prepared: PreparedTask, test, output: Path):
    shapes = test.targets.shapes() if isinstance(test.targets, Ragged) else None
    preds = validate(
        spec, read_predictions(output / "predictions-test.npz", spec), test.case_ids, shapes=shapes
    )
    val_pair = None
    if spec.kind == "binary":
        val = prepared.split("val")
        try:
            val_preds = validate(
                spec, read_predictions(output / "predictions-val.npz", spec), val.case_ids
            )
        except PredictionError as exc:
            raise PredictionError(f"on the validation split: {exc}") from None
        val_pair = (np.asarray(val.targets), val_preds)
    truth = list(test.targets) if isinstance(test.targets, Ragged) else np.asarray(test.targets)
    return score(spec, preds, truth, test.cases, val=val_pair), preds


def _base_record(manifest, digest, spec, prepared, seed, device, options) -> dict[str, Any]:
    try:
        sub_path = str(Path(manifest.path).relative_to(Path.cwd()))
    except ValueError:
        sub_path = str(manifest.path)
    return {
        "schema": "medbench.result/1",
        "status": "ok",
        "error": None,
        "task": {
            "name": spec.name,
            "version": spec.version,
            "kind": spec.kind,
            "split_sha256": spec.split_sha256,
            "data_sha256": prepared.data_sha256,
            "data_source": {
                "dataset": prepared.source["dataset"],
                "layout": prepared.source["layout"],
            },
            "n_test": prepared.manifest["counts"]["test"],
        },
        "submission": {
            "name": manifest.name,
            "summary": manifest.summary,
            "path": sub_path,
            "content_sha256": digest,
        },
        "seed": seed,
        "device": device,
        "train": json_safe({**manifest.train_for(spec.name), **options.train_overrides}),
        "primary_metric": spec.primary_metric,
        "higher_is_better": spec.primary.higher_is_better,
        "metrics": {},
        "per_class": {},
        "operating_points": {},
        "per_case": {},
        "environment": {"cpu_threads": options.child_threads()},
    }


def _finish(target, run, record, status, reason, tail, timings, child_info, started) -> Outcome:
    record["status"] = status
    if status == "failed":
        record["error"] = {"message": reason, "log_tail": tail}
        record["metrics"], record["per_class"], record["per_case"], record["operating_points"] = (
            {},
            {},
            {},
            {},
        )
    timings["total_s"] = round(time.perf_counter() - started, 3)
    record["timings"] = timings
    record["device_name"] = child_info.get("device_name", record["device"])
    record["peak_gpu_memory_mb"] = child_info.get("peak_gpu_memory_mb")
    record["environment"] = {**environment(), **record.get("environment", {})}
    record["created"] = now_utc()
    return Outcome(run, status, record, target, reason)


def run_all(
    runs: Sequence[Run], options: RunOptions, on_event: Event | None = None
) -> list[Outcome]:
    """Run each in turn; one failing run never stops the others."""
    from medbench.executors import LocalExecutor

    return LocalExecutor().run(runs, options, on_event)
