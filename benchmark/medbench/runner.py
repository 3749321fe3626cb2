"""One run = (submission, task, seed): snapshot -> fit/predict in a sandboxed child -> score -> record.

The parent resolves a run once (snapshot of the submission and its content hash, manifest read
from the snapshot, task spec, prepared data verified once, effective ``[train]``), hands the child
only what it needs (train/val arrays, the test images in a shuffled order, opaque case ids), and
keeps everything else on its side of the boundary: the test labels are read, verified and scored
here only after the child has exited. Every failure of the submission (an exception, a crash, a
timeout, the memory limit, invalid or malformed output, a damaged cache) becomes a record with
``status: failed``, its reason and the tail of the child's log.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medbench import __version__
from medbench.blinding import Blinding, unblind
from medbench.child import ERROR, RESULT
from medbench.data.arrays import Ragged, load_array, save_array
from medbench.data.files import locked, sha256_bytes, write_bytes_atomic, write_json_atomic
from medbench.data.prepare import PreparedTask, answers_dir, load_prepared, prepare, prepared_dir
from medbench.data.sources import medbench_home
from medbench.errors import (
    ChecksumError,
    MedbenchError,
    PredictionError,
    RecordError,
    SubmissionError,
)
from medbench.gallery import worst_cases_png
from medbench.limits import ProcessTree
from medbench.predictions import read_predictions, validate
from medbench.results import environment, json_safe, now_utc, read_record, record_path, write_record
from medbench.sandbox import ISOLATIONS, ROOT, child_env, probe, resolve_isolation
from medbench.sandbox import command as sandbox_command
from medbench.saved import encode, predictions_path
from medbench.scoring import score
from medbench.submission.loader import read_manifest
from medbench.submission.snapshot import DEFAULT_LIMIT_MB, Snapshot, content_hash, snapshot
from medbench.supervise import (
    ERROR_SCHEMA,
    RESULT_SCHEMA,
    ChildExit,
    check_stop,
    read_child_json,
    run_child,
    signal_name,
)
from medbench.tasks import TaskSpec, get_task
from medbench.tasks.spec import SPLITS

Event = Callable[[dict[str, Any]], None]
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
    isolation: str | None = None  # sandbox | none; None: sandbox where bubblewrap works
    max_submission_mb: float = DEFAULT_LIMIT_MB

    def __post_init__(self) -> None:
        def positive(value: Any, name: str, unit: str) -> None:
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise MedbenchError(f"{name} must be a positive number of {unit}; got {value!r}")

        positive(self.timeout, "--timeout", "seconds")
        positive(self.memory_limit_mb, "--memory-limit", "MiB")
        positive(self.threads, "--threads", "threads")
        positive(self.max_submission_mb, "--max-submission-mb", "MiB")
        if self.isolation is not None and self.isolation not in ISOLATIONS:
            raise MedbenchError(f"--isolation must be sandbox or none; got {self.isolation!r}")

    def child_threads(self) -> int:
        return int(self.threads or os.cpu_count() or 1)

    def isolation_mode(self) -> str:
        return resolve_isolation(self.isolation)[0]


@dataclass
class Outcome:
    run: Run
    status: str  # ok | failed | skipped | error (harness-side, no record)
    record: dict[str, Any] | None = None
    path: Path | None = None
    message: str = ""
    # {split: (real case ids, validated predictions)}: saved beside the record by write_outcome
    predictions: dict[str, tuple[Any, Any]] | None = None


def default_device() -> str:
    """cuda when a GPU is there, else cpu; without importing torch (seconds) in the parent."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return "cpu"
    return "cuda" if any(Path("/dev").glob("nvidia[0-9]*")) else "cpu"


def plan(
    paths: Sequence[str | Path], tasks: Sequence[str] = (), seeds: Sequence[int] = (0,)
) -> list[Run]:
    """Every (submission, task, seed) to run; ``tasks`` filters those each manifest enters."""
    for t in tasks:
        get_task(t)  # unknown names fail early, with suggestions
    runs, names = [], {}
    for p in paths:
        manifest = read_manifest(p)
        where = os.path.realpath(p)
        if manifest.name in names and names[manifest.name] != where:
            raise SubmissionError(
                f"two submission folders are named {manifest.name!r} ({names[manifest.name]} and "
                f"{where}); their records would overwrite each other: rename one"
            )
        if names.get(manifest.name) == where:
            continue  # the same folder named twice
        names[manifest.name] = where
        chosen = [t for t in manifest.tasks if not tasks or t in tasks]
        if tasks and not chosen:
            raise SubmissionError(
                f"submission {manifest.name!r} enters {list(manifest.tasks)}, none of {list(tasks)}"
            )
        runs += [Run(Path(p), t, s) for t in chosen for s in seeds]
    return runs


def run_folder(name: str, digest: str, spec: TaskSpec, seed: int) -> Path:
    return medbench_home() / "runs" / spec.name / f"{name}-{digest[:12]}" / f"seed{seed}"


def identity(
    digest: str,
    spec: TaskSpec,
    data_sha: str,
    seed: int,
    train: dict[str, Any],
    device: str,
    isolation: str,
) -> dict[str, Any]:
    """What makes two runs the same run (the skip rule, and whether a checkpoint may resume)."""
    return {
        "content_sha256": digest,
        "task_version": spec.version,
        "data_sha256": data_sha,
        "seed": seed,
        "medbench": __version__,
        "train": json_safe(train),
        "device": device.split(":")[0],
        "isolation": isolation,
    }


def record_identity(record: dict[str, Any]) -> dict[str, Any]:
    """:func:`identity` as a record states it."""
    return {
        "content_sha256": record["submission"].get("content_sha256"),
        "task_version": record["task"].get("version"),
        "data_sha256": record["task"].get("data_sha256"),
        "seed": record.get("seed"),
        "medbench": (record.get("environment") or {}).get("medbench"),
        "train": record.get("train"),
        "device": str(record.get("device", "")).split(":")[0],
        "isolation": (record.get("isolation") or {}).get("mode"),
    }


def already_done(run: Run, options: RunOptions) -> Outcome | None:
    """The recorded outcome if an identical, successful run is already recorded and ``--force``
    is not set; else None."""
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
    if old.get("status") != "ok":
        return None
    prepared = prepare(spec)
    train = {**manifest.train_for(spec.name), **options.train_overrides}
    device = options.device or default_device()
    wanted = identity(
        content_hash(run.submission, limit_mb=options.max_submission_mb),
        spec,
        prepared.data_sha256,
        run.seed,
        train,
        device,
        options.isolation_mode(),
    )
    if record_identity(old) == wanted:
        return Outcome(
            run, "skipped", old, target, "already done with the same content, task, data and seed"
        )
    return None


def execute(run: Run, options: RunOptions, on_event: Event | None = None) -> Outcome:
    """Run one (submission, task, seed) and write its record. Harness-side errors raise."""
    done = already_done(run, options)
    if done is not None:
        return done
    return write_outcome(compute(run, options, on_event))


def write_outcome(outcome: Outcome) -> Outcome:
    """Write an outcome's saved predictions, then seal and write its record (both atomically);
    the driver of every executor does this."""
    if outcome.status not in ("ok", "failed") or outcome.record is None or outcome.path is None:
        return outcome
    saved = predictions_path(outcome.path)
    try:
        if outcome.predictions:
            data = encode(outcome.predictions)
            write_bytes_atomic(saved, data)
            outcome.record["predictions"] = {"file": saved.name, "sha256": sha256_bytes(data)}
        else:
            saved.unlink(missing_ok=True)  # a failed run replaces an older run's predictions
    except OSError as exc:
        raise RecordError(
            f"cannot write saved predictions {saved}: {exc.strerror or exc}"
        ) from None
    outcome.record = write_record(outcome.path, outcome.record)
    outcome.predictions = None
    return outcome


def check_writable(folder: Path) -> None:
    """Refuse, before any training, a results folder that cannot take a record."""
    blocked = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise RecordError(f"cannot write result records into {folder}: {blocked} is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".medbench-probe.", suffix=".tmp"):
            pass
    except OSError as exc:
        raise RecordError(
            f"cannot write result records into {folder}: {exc.strerror or exc}"
        ) from None


# --- one run -------------------------------------------------------------------------------------


@dataclass
class _Layout:
    """The child's view of the run's files: inside paths in the sandbox, host paths without."""

    sandboxed: bool
    read_only: dict[str, Path] = field(default_factory=dict)
    writable: dict[str, Path] = field(default_factory=dict)

    def ro(self, host: Path, inside: str) -> str:
        if not self.sandboxed:
            return str(host)
        self.read_only[inside] = host
        return inside

    def rw(self, host: Path, inside: str) -> str:
        if not self.sandboxed:
            return str(host)
        self.writable[inside] = host
        return inside


@dataclass(frozen=True)
class _Ids:
    """Per split: the real case ids and the opaque ones given for them (same order)."""

    real: dict[str, tuple[str, ...]]
    opaque: dict[str, tuple[str, ...]]


def compute(run: Run, options: RunOptions, on_event: Event | None = None) -> Outcome:
    """Fit, predict and score one run; return its (unsealed, unwritten) record."""
    started = time.perf_counter()
    check_stop()
    spec = get_task(run.task)
    manifest = read_manifest(run.submission)
    if spec.name not in manifest.tasks:
        raise SubmissionError(f"submission {manifest.name!r} does not enter task {spec.name!r}")
    isolation = options.isolation_mode()
    staging = medbench_home() / "runs" / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    _sweep_staging(staging)
    tmp = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=staging))
    try:
        # What runs is this copy: the record names its hash, whatever happens to the folder now.
        snap = snapshot(run.submission, tmp / "submission", limit_mb=options.max_submission_mb)
        manifest = read_manifest(snap.path)
        if spec.name not in manifest.tasks:
            raise SubmissionError(f"submission {manifest.name!r} does not enter task {spec.name!r}")
        folder = run_folder(manifest.name, snap.content_sha256, spec, run.seed)
        # Two processes running the same (submission, task, seed) share this folder and would
        # delete each other's inputs and predictions mid-run: the second waits for the first.
        with locked(folder.with_name(f"{folder.name}.lock")):
            return _compute(
                run, options, on_event, started, manifest, snap, spec, folder, isolation
            )
    finally:
        _remove_tree(tmp)


def _remove_tree(path: Path) -> None:
    """rmtree that also removes the read-only files of a snapshot."""

    def writable_then_retry(func, p, _exc):
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o600)
            func(p)

    if path.exists() or path.is_symlink():
        shutil.rmtree(path, onerror=writable_then_retry)


def _sweep_staging(staging: Path) -> None:
    """Remove staging folders of runners that are gone (killed before their cleanup)."""
    with contextlib.suppress(OSError):
        for entry in staging.iterdir():
            pid = entry.name.split("-")[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                _remove_tree(entry)


def _compute(run, options, on_event, started, manifest, snap, spec, folder, isolation) -> Outcome:
    t0 = time.perf_counter()
    prepared = prepare(spec)
    prepared.verify()  # once, before the child; a changed file is refused with its name
    prepare_s = time.perf_counter() - t0
    target = record_path(options.results_dir, spec.name, manifest.name, run.seed)
    check_writable(target.parent)
    device = options.device or default_device()
    train = {**manifest.train_for(spec.name), **options.train_overrides}
    ident = identity(
        snap.content_sha256, spec, prepared.data_sha256, run.seed, train, device, isolation
    )
    resume_note = _prepare_folder(folder, snap, ident, resume=options.resume)
    layout = _Layout(sandboxed=isolation == "sandbox")
    blinding = Blinding.for_run(spec.name, spec.version, snap.content_sha256, run.seed)
    inputs, ids = _write_inputs(prepared, folder / "input", blinding, layout)
    output = folder / "output"
    job = {
        "submission": layout.ro(folder / "submission", f"{ROOT}/submission"),
        "task": spec.name,
        "seed": run.seed,
        "device": device,
        "resume": options.resume,
        "train": json_safe(train),
        "inputs": inputs,
        "workdir": layout.rw(folder / "work", f"{ROOT}/work"),
        "output": layout.rw(output, f"{ROOT}/output"),
    }
    write_json_atomic(folder / "job.json", job)
    job_path = layout.ro(folder / "job.json", f"{ROOT}/job.json")
    if resume_note:
        with open(folder / "child.log", "a") as log:
            log.write(f"[medbench: {resume_note}]\n")
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
    argv = [sys.executable, "-P", "-m", "medbench.child", job_path]
    if layout.sandboxed:
        argv = sandbox_command(
            argv,
            read_only=layout.read_only,
            writable=layout.writable,
            cuda=device.startswith("cuda"),
            chdir=f"{ROOT}/work",
        )
    tree = ProcessTree.create(options.memory_limit_mb)
    t_child = time.perf_counter()
    try:
        ended = run_child(
            argv,
            env=_child_env(options, run.seed, job["workdir"], layout.sandboxed),
            log_path=folder / "child.log",
            timeout=options.timeout,
            tree=tree,
            on_event=on_event,
            shell_style_signals=layout.sandboxed,
        )
    finally:
        tree.close()
    child_wall_s = time.perf_counter() - t_child
    base = _base_record(
        run, manifest, snap, spec, prepared, device, train, options, isolation, tree
    )
    timings = {"prepare_s": round(prepare_s, 3), "child_wall_s": round(child_wall_s, 3)}
    reason, child_info = _child_outcome(ended, output)
    timings.update({k: round(child_info[k], 3) for k in ("fit_s", "predict_s") if k in child_info})
    base["peak_memory_mb"] = ended.peak_memory_mb
    damage = _damaged_caches(spec, isolation)
    if damage:
        reason = reason or f"the submission changed a prepared data cache: {damage}"
    if reason:
        return _finish(
            target, run, base, "failed", reason, ended.tail, timings, child_info, started
        )
    try:
        t0 = time.perf_counter()
        report, saved, gallery_args = _score(spec, prepared, ids, output)
        timings["score_s"] = round(time.perf_counter() - t0, 3)
    except PredictionError as exc:
        return _finish(
            target,
            run,
            base,
            "failed",
            f"invalid predictions: {exc}",
            ended.tail,
            timings,
            child_info,
            started,
        )
    if spec.kind in ("multilabel-segmentation", "instance-segmentation"):
        images, truth, preds = gallery_args
        png = worst_cases_png(
            images,
            truth,
            preds,
            report.per_case[spec.primary_metric].to_numpy(),
            ids.real["test"],
            metric=spec.primary_metric,
            higher_is_better=spec.primary.higher_is_better,
        )
        if png is not None:
            gallery = target.with_suffix(".worst.png")
            write_bytes_atomic(gallery, png)
            base["gallery"] = {"file": gallery.name, "sha256": sha256_bytes(png)}
    base.update(report_fields(report))
    outcome = _finish(target, run, base, "ok", "", ended.tail, timings, child_info, started)
    outcome.predictions = saved
    return outcome


def _prepare_folder(folder: Path, snap: Snapshot, ident: dict[str, Any], *, resume: bool) -> str:
    """Make the run folder: the snapshot in place, no stale inputs, outputs or child files.

    With ``resume``, the work folder (checkpoints) is kept only when the previous run there was
    this very run (:func:`identity`); returns a note when it was not.
    """
    note = ""
    stamp = folder / "run.json"
    if resume and folder.exists():
        try:
            previous = json.loads(stamp.read_text())
        except (OSError, ValueError):
            previous = None
        if previous != ident:
            changed = (
                sorted(k for k in ident if previous.get(k) != ident[k])
                if isinstance(previous, dict)
                else ["no record of the previous run"]
            )
            note = f"not resuming: the run's {', '.join(changed)} changed; starting over"
            _remove_tree(folder / "work")
    elif folder.exists():
        _remove_tree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("input", "output", "submission", "job.json"):
        path = folder / sub
        if path.is_dir():
            _remove_tree(path)
        else:
            path.unlink(missing_ok=True)
    os.replace(snap.path, folder / "submission")
    for sub in ("input", "output", "work"):
        (folder / sub).mkdir(exist_ok=True)
    write_json_atomic(stamp, ident)
    return note


def _write_inputs(
    prepared: PreparedTask, folder: Path, blinding: Blinding, layout: _Layout
) -> tuple[dict[str, Any], _Ids]:
    """Each split's case table (opaque ids) and array files as the child will see them.

    Train and val arrays are the prepared files themselves (read-only in the sandbox); the test
    images are copied in the shuffled order, their labels are not there at all.
    """
    inputs: dict[str, Any] = {}
    real: dict[str, tuple[str, ...]] = {}
    opaque: dict[str, tuple[str, ...]] = {}
    for split in SPLITS:
        cases = pd.read_csv(prepared.path / split / "cases.csv", dtype=str, keep_default_na=False)
        real[split] = tuple(cases["case_id"])
        opaque[split] = blinding.ids(split, real[split])
        out = folder / split
        out.mkdir(parents=True, exist_ok=True)
        inside = f"{ROOT}/input/{split}"
        if split == "test":
            order = blinding.order(split, len(real[split]))
            images = load_array(prepared.path / split, "images")
            shuffled = (
                Ragged.from_arrays([np.asarray(images[i]) for i in order])
                if isinstance(images, Ragged)
                else np.ascontiguousarray(images[order])
            )
            image_files = save_array(out, "images", shuffled)
            given = [opaque[split][i] for i in order]
            targets = []
        else:
            image_files = prepared.files(split, "images")
            given = list(opaque[split])
            targets = prepared.files(split, "targets")
        pd.DataFrame({"case_id": given}).to_csv(out / "cases.csv", index=False, lineterminator="\n")
        inputs[split] = {
            "cases": layout.ro(out / "cases.csv", f"{inside}/cases.csv"),
            "images": [layout.ro(f, f"{inside}/{f.name}") for f in image_files],
            "targets": [layout.ro(f, f"{inside}/{f.name}") for f in targets],
        }
    return inputs, _Ids(real, opaque)


def _child_env(options: RunOptions, seed: int, workdir: str, sandboxed: bool) -> dict[str, str]:
    threads = str(options.child_threads())
    env = child_env(workdir) if sandboxed else dict(os.environ)
    env.update(options.env)
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": str(seed),
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "MEDBENCH_THREADS": threads,
        }
    )
    return env


def _child_outcome(ended: ChildExit, output: Path) -> tuple[str, dict[str, Any]]:
    """(the reason the run failed, or "", and the child's checked result fields)."""
    if ended.reason:
        return ended.reason, {}
    if ended.code == 0:
        try:
            return "", read_child_json(output / RESULT, RESULT_SCHEMA)
        except ValueError as exc:
            return f"the child exited normally but {exc}", {}
    try:
        err = read_child_json(output / ERROR, ERROR_SCHEMA)
        return f"{err['type']}: {err['message']}", {}
    except ValueError:
        pass
    if ended.code is not None and ended.code < 0:
        return f"the child process was killed by signal {signal_name(ended.code)}", {}
    return f"the child process exited with code {ended.code}", {}


def _damaged_caches(spec: TaskSpec, isolation: str) -> str:
    """Which prepared cache the child changed, if any ("" when none).

    In the sandbox every prepared file is mounted read-only and the others are not there at all,
    so there is nothing to check. Without it the child could have written into any task's cache:
    all of them are re-hashed; a damaged one is rebuilt (this task's) or removed (the others',
    prepared again on their next use).
    """
    if isolation == "sandbox":
        return ""
    damaged = []
    root = medbench_home() / "prepared"
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            other = get_task(json.loads((folder / "manifest.json").read_text())["task"])
        except (OSError, ValueError, KeyError, TypeError, MedbenchError):
            continue
        if folder != prepared_dir(other):
            continue
        try:
            ready = load_prepared(other)
            if ready is not None:
                ready.verify()
        except ChecksumError as exc:
            damaged.append(str(exc))
            if other.name == spec.name:
                prepare(other, force=True)
            else:
                _remove_tree(prepared_dir(other))
                _remove_tree(answers_dir(other))
    return "; ".join(damaged)


def _score(spec: TaskSpec, prepared: PreparedTask, ids: _Ids, output: Path):
    """Read the child's predictions (bounded), translate their ids back, validate and score."""
    truth = {split: prepared.targets(split) for split in ("test", "val")}  # verified bytes
    preds = {}
    for split in ("test", "val"):
        shapes = truth[split].shapes() if isinstance(truth[split], Ragged) else None
        try:
            raw = read_predictions(
                output / f"predictions-{split}.npz",
                spec,
                n_cases=len(ids.real[split]),
                shapes=shapes,
            )
            preds[split] = validate(
                spec,
                unblind(raw, ids.opaque[split], ids.real[split], split=split),
                ids.real[split],
                shapes=shapes,
            )
        except PredictionError as exc:
            raise PredictionError(
                f"on the validation split: {exc}" if split == "val" else str(exc)
            ) from None
    report = score_splits(spec, prepared, preds, truth)
    saved = {s: (ids.real[s], preds[s]) for s in ("test", "val")}
    images = prepared.split("test", with_targets=False).images
    return report, saved, (images, truth["test"], preds["test"])


def score_splits(spec: TaskSpec, prepared: PreparedTask, preds: dict, truth: dict):
    """Score validated test predictions; binary operating points are chosen on val."""
    targets = {s: list(t) if isinstance(t, Ragged) else np.asarray(t) for s, t in truth.items()}
    val_pair = (targets["val"], preds["val"]) if spec.kind == "binary" else None
    cases = prepared.split("test", with_targets=False).cases
    return score(spec, preds["test"], targets["test"], cases, val=val_pair)


def report_fields(report) -> dict[str, Any]:
    """What a record holds of a score report."""
    return {
        "metrics": {k: v.to_dict() for k, v in report.summary.items()},
        "per_class": {
            c: {k: v.to_dict() for k, v in m.items()} for c, m in report.per_class.items()
        },
        "operating_points": json_safe(report.operating_points),
        "per_case": report.to_dict()["per_case"],
    }


def _isolation_record(isolation: str, tree: ProcessTree) -> dict[str, Any]:
    found = probe() if isolation == "sandbox" else None
    return {
        "mode": isolation,
        "tool": found.version if found else None,
        "network": isolation != "sandbox",
        **tree.describe(),
    }


def _base_record(
    run, manifest, snap, spec, prepared, device, train, options, isolation, tree
) -> dict[str, Any]:
    try:
        sub_path = str(Path(run.submission).resolve().relative_to(Path.cwd()))
    except ValueError:
        sub_path = str(Path(run.submission).resolve())
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
            "raw_sha256": prepared.manifest.get("raw_sha256"),
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
            "content_sha256": snap.content_sha256,
            "files": snap.n_files,
            "bytes": snap.n_bytes,
        },
        "seed": run.seed,
        "device": device,
        "isolation": _isolation_record(isolation, tree),
        "train": json_safe(train),
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
