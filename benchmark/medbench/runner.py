"""One run = (submission, task, seed): resolve -> fit/predict in a sandboxed child -> score -> record.

A run is resolved once (:func:`resolve`: the snapshot of the submission and its content hash, the
manifest read from the snapshot, the task spec, the prepared data, the effective ``[train]``, the
record's path); the skip rule, the child, the scoring and the record all take that one
:class:`ResolvedRun`. The child gets only what it needs (train/val arrays, the test images in a
shuffled order, opaque case ids); the test labels are read, verified and scored here only after
it has exited. Every failure of the submission (an exception, a crash, a timeout, the memory
limit, invalid or malformed output, a damaged cache) becomes a record with ``status: failed``,
its reason and the tail of the child's log.
"""

from __future__ import annotations

import json
import math
import os
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
from medbench.cost import check_reported, run_cost
from medbench.data.arrays import Ragged
from medbench.data.datasets import DATASETS
from medbench.data.files import locked, sha256_bytes, write_bytes_atomic, write_json_atomic
from medbench.data.prepare import PreparedTask, answers_dir, load_prepared, prepare, prepared_dir
from medbench.data.subsets import CLASSIFICATION, TrainSubset, check_fraction, train_subset
from medbench.errors import (
    ChecksumError,
    MedbenchError,
    PredictionError,
    RecordError,
    SubmissionError,
)
from medbench.gallery import worst_cases_png, worst_indices
from medbench.home import medbench_home
from medbench.limits import ProcessTree
from medbench.predictions import read_predictions, validate
from medbench.results import (
    Record,
    entry_stem,
    environment,
    json_safe,
    now_utc,
    read_record,
    record_path,
    write_record,
)
from medbench.run_folder import (
    Ids,
    Layout,
    environment_for,
    prepare_folder,
    remove_tree,
    run_folder,
    staging_folder,
    write_inputs,
)
from medbench.sandbox import ISOLATIONS, ROOT, probe, resolve_isolation
from medbench.sandbox import command as sandbox_command
from medbench.saved import encode, predictions_path
from medbench.scoring import ScoreReport, report_fields, score, score_run
from medbench.submission.api import TaskInfo
from medbench.submission.loader import Manifest, read_manifest
from medbench.submission.snapshot import DEFAULT_LIMIT_MB, Snapshot, content_hash, snapshot
from medbench.supervise import (
    ERROR_SCHEMA,
    RESULT_SCHEMA,
    ChildExit,
    check_stop,
    open_regular,
    read_child_json,
    run_child,
    signal_name,
)
from medbench.tasks import TaskSpec, get_task

Event = Callable[[dict[str, Any]], None]
DEFAULT_RESULTS = Path("leaderboards") / "results"
GALLERY_SPLITS = ("val", "test")
SEGMENTATION_KINDS = ("multilabel-segmentation", "instance-segmentation")


@dataclass(frozen=True)
class Run:
    submission: Path
    task: str
    seed: int
    # Train on this fraction of the training cases (medbench.data.subsets); None: all of them.
    train_fraction: float | None = None


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
    # A label for runs with other [train] settings: their records are the entry "<name>+<variant>",
    # beside the submission's own (e.g. cnn+scratch: --set backbone=resnet18 --set pretrained=false).
    variant: str | None = None
    # Which split the worst-cases gallery of a segmentation run shows (GALLERY_SPLITS); None: the
    # task's ``gallery_split`` option, else test. With val no test label is ever drawn.
    gallery_split: str | None = None

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
        if self.gallery_split is not None and self.gallery_split not in GALLERY_SPLITS:
            raise MedbenchError(f"--gallery-split must be val or test; got {self.gallery_split!r}")
        if self.variant is not None and (
            not self.variant
            or len(self.variant) > 40
            or not all(c.isalnum() or c in "-_." for c in self.variant)
        ):
            raise MedbenchError(
                "--variant may hold only letters, digits, '-', '_', '.' (at most 40); "
                f"got {self.variant!r}"
            )

    def entry_name(self, name: str) -> str:
        """The leaderboard entry of submission ``name`` in these runs."""
        return f"{name}+{self.variant}" if self.variant else name

    def child_threads(self) -> int:
        return int(self.threads or os.cpu_count() or 1)

    def isolation_mode(self) -> str:
        return resolve_isolation(self.isolation)[0]

    @property
    def device_or_default(self) -> str:
        return self.device or default_device()


@dataclass
class Outcome:
    run: Run
    status: str  # ok | failed | skipped | error (harness-side, no record)
    record: dict[str, Any] | None = None
    path: Path | None = None
    message: str = ""
    # {split: (real case ids, validated predictions)}: saved beside the record by write_outcome
    predictions: dict[str, tuple[Any, Any]] | None = None
    derived: list[Path] = field(default_factory=list)  # its records on coarse views of the task
    notes: list[str] = field(default_factory=list)  # what the caller should say besides


def default_device() -> str:
    """cuda when a GPU is there, else cpu; without importing torch (seconds) in the parent."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return "cpu"
    return "cuda" if any(Path("/dev").glob("nvidia[0-9]*")) else "cpu"


def plan(
    paths: Sequence[str | Path],
    tasks: Sequence[str] = (),
    seeds: Sequence[int] = (0,),
    fractions: Sequence[float | None] = (None,),
) -> list[Run]:
    """Every (submission, task, seed, training fraction) to run; ``tasks`` filters those each
    manifest enters. A fraction of 1 is the ordinary run on all training cases."""
    for t in tasks:
        get_task(t)  # unknown names fail early, with suggestions
    fractions = [None if f is None or check_fraction(f) == 1.0 else float(f) for f in fractions]
    fractions = list(dict.fromkeys(fractions))
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
        runs += [Run(Path(p), t, s, f) for t in chosen for f in fractions for s in seeds]
    return runs


# --- a run, resolved once ------------------------------------------------------------------------


@dataclass
class ResolvedRun:
    """Everything a run is, worked out once: what runs (the snapshot), on what (the task and its
    prepared data), how (``[train]``, device, isolation) and where its record goes."""

    run: Run
    spec: TaskSpec
    manifest: Manifest  # read from the snapshot
    content_sha256: str
    snapshot: Snapshot | None  # None: resolved only to apply the skip rule
    prepared: PreparedTask
    train: dict[str, Any]
    device: str
    isolation: str
    target: Path  # the record's path
    prepare_s: float
    entry: str  # the leaderboard entry: the submission's name, or "<name>+<variant>"
    variant: str | None = None
    verify_s: float = 0.0  # checking the prepared files against their manifest, before the child
    subset: TrainSubset | None = None  # the training cases it sees, when not all of them
    gallery_split: str = "test"  # the split of the worst-cases gallery (segmentation tasks)

    @property
    def identity(self) -> dict[str, Any]:
        """What makes two runs the same run (the skip rule, and whether a checkpoint resumes)."""
        return {
            "content_sha256": self.content_sha256,
            "task_version": self.spec.version,
            "data_sha256": self.prepared.data_sha256,
            "seed": self.run.seed,
            "medbench": __version__,
            "train": json_safe(self.train),
            "device": self.device.split(":")[0],
            "isolation": self.isolation,
            "train_subset": self.subset.sha256 if self.subset else None,
            # only when not the default, so records made before galleries had a split still match
            **(
                {"gallery_split": "val"}
                if self.draws_gallery and self.gallery_split == "val"
                else {}
            ),
        }

    @property
    def draws_gallery(self) -> bool:
        return self.spec.kind in SEGMENTATION_KINDS

    @property
    def folder(self) -> Path:
        return run_folder(
            entry_stem(self.entry, self.run.train_fraction),
            self.content_sha256,
            self.spec.name,
            self.run.seed,
        )

    def discard(self) -> None:
        """Remove the snapshot if the run did not take it (skipped, or failed before)."""
        if self.snapshot is not None:
            remove_tree(self.snapshot.path.parent)


def resolve(run: Run, options: RunOptions, *, take_snapshot: bool = True) -> ResolvedRun:
    """Resolve ``run``; without ``take_snapshot``, hash the folder in place (the skip rule only)."""
    check_stop()
    spec = get_task(run.task)
    manifest = read_manifest(run.submission)
    if spec.name not in manifest.tasks:
        raise SubmissionError(f"submission {manifest.name!r} does not enter task {spec.name!r}")
    snap = None
    if take_snapshot:
        # What runs is this copy: the record names its hash, whatever happens to the folder now.
        staging = staging_folder()
        try:
            snap = snapshot(
                run.submission, staging / "submission", limit_mb=options.max_submission_mb
            )
            manifest = read_manifest(snap.path)
        except BaseException:
            remove_tree(staging)
            raise
        if spec.name not in manifest.tasks:
            remove_tree(staging)
            raise SubmissionError(f"submission {manifest.name!r} does not enter task {spec.name!r}")
    digest = (
        snap.content_sha256
        if snap
        else content_hash(run.submission, limit_mb=options.max_submission_mb)
    )
    t0 = time.perf_counter()
    prepared = prepare(spec)
    subset = None
    if run.train_fraction is not None:
        train = prepared.split("train", with_targets=spec.kind in CLASSIFICATION)
        subset = train_subset(spec, train.cases, train.targets, run.train_fraction)
    entry = options.entry_name(manifest.name)
    return ResolvedRun(
        run=run,
        spec=spec,
        manifest=manifest,
        content_sha256=digest,
        snapshot=snap,
        prepared=prepared,
        train={**manifest.train_for(spec.name), **options.train_overrides},
        device=options.device_or_default,
        isolation=options.isolation_mode(),
        target=record_path(
            options.results_dir, spec.name, entry_stem(entry, run.train_fraction), run.seed
        ),
        prepare_s=time.perf_counter() - t0,
        entry=entry,
        variant=options.variant,
        subset=subset,
        gallery_split=gallery_split(spec, options.gallery_split),
    )


def gallery_split(spec: TaskSpec, requested: str | None = None) -> str:
    """The split a run's worst-cases gallery shows: ``requested`` (``--gallery-split``), else
    the task's ``gallery_split`` option, else ``test``."""
    split = requested or str(spec.option("gallery_split", "test"))
    if split not in GALLERY_SPLITS:
        raise MedbenchError(f"--gallery-split must be val or test; got {split!r}")
    return split


def record_identity(record: dict[str, Any]) -> dict[str, Any]:
    """:attr:`ResolvedRun.identity` as a record states it."""
    return {
        "content_sha256": record["submission"].get("content_sha256"),
        "task_version": record["task"].get("version"),
        "data_sha256": record["task"].get("data_sha256"),
        "seed": record.get("seed"),
        "medbench": (record.get("environment") or {}).get("medbench"),
        "train": record.get("train"),
        "device": str(record.get("device", "")).split(":")[0],
        "isolation": (record.get("isolation") or {}).get("mode"),
        "train_subset": (record.get("train_subset") or {}).get("sha256"),
        **({"gallery_split": "val"} if (record.get("gallery") or {}).get("split") == "val" else {}),
    }


def already_done(resolved: ResolvedRun, options: RunOptions) -> Outcome | None:
    """The recorded outcome if the same run already succeeded and ``--force`` is not set."""
    if options.force or not resolved.target.is_file():
        return None
    try:
        old = read_record(resolved.target)
    except MedbenchError:
        return None
    if old.get("status") == "ok" and record_identity(old) == resolved.identity:
        message = "already done with the same content, task, data and seed"
        return Outcome(resolved.run, "skipped", old, resolved.target, message)
    return None


def execute(run: Run, options: RunOptions, on_event: Event | None = None) -> Outcome:
    """Resolve, apply the skip rule, run and write the record of one (submission, task, seed)."""
    resolved = resolve(run, options)
    done = already_done(resolved, options)
    if done is not None:
        resolved.discard()
        return done
    return write_outcome(compute(resolved, options, on_event))


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
    if outcome.status == "ok" and outcome.run.train_fraction is None:
        _derive_coarse(outcome)
    return outcome


def _derive_coarse(outcome: Outcome) -> None:
    """Score a fine task's run on the tasks that are its coarse views too (medbench.coarse).

    The run's own record stands whatever happens here; a view that cannot be scored (its data
    is not on this machine, say) is reported in ``outcome.notes``."""
    from medbench.coarse import coarse_views, derive

    if not coarse_views(get_task(outcome.run.task)):
        return
    try:
        outcome.derived = derive(outcome.path)
    except MedbenchError as exc:
        outcome.notes.append(f"not scored on its coarse views: {exc}")


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


# --- computing a run -----------------------------------------------------------------------------


def compute(resolved: ResolvedRun, options: RunOptions, on_event: Event | None = None) -> Outcome:
    """Fit, predict and score one resolved run; return its (unsealed, unwritten) record."""
    started = time.perf_counter()
    if resolved.snapshot is None:
        raise ValueError("compute() needs a run resolved with its snapshot")
    try:
        # Two processes running the same (submission, task, seed) share this folder and would
        # delete each other's inputs and predictions mid-run: the second waits for the first.
        with locked(resolved.folder.with_name(f"{resolved.folder.name}.lock")):
            t0 = time.perf_counter()
            resolved.prepared.verify()  # once, before the child; a changed file is refused by name
            resolved.verify_s = time.perf_counter() - t0
            check_writable(resolved.target.parent)
            prepare_folder(
                resolved.folder, resolved.snapshot, resolved.identity, resume=options.resume
            )
            layout, ids, job_path = _stage(resolved, options)
            if on_event:
                on_event(_start_event(resolved))
            ended, tree, wall_s = _run(
                resolved, options, layout, job_path, _tagged(on_event, resolved)
            )
            return _conclude(resolved, options, ended, tree, wall_s, ids, started)
    finally:
        resolved.discard()


def compute_run(run: Run, options: RunOptions, on_event: Event | None = None) -> Outcome:
    """Resolve and compute (where the skip rule was already applied elsewhere: a Ray worker)."""
    return compute(resolve(run, options), options, on_event)


def _start_event(resolved: ResolvedRun) -> dict[str, Any]:
    return {
        "event": "start",
        "task": resolved.spec.name,
        "submission": entry_stem(resolved.entry, resolved.run.train_fraction),
        "seed": resolved.run.seed,
        "device": resolved.device,
    }


def _tagged(on_event: Event | None, resolved: ResolvedRun) -> Event | None:
    """``on_event`` for the child's events, each stamped with the run it came from (as the start
    event names it): concurrent runs share one listener. The stamp overwrites any ``task``,
    ``submission`` or ``seed`` the child put in: it cannot speak for another run."""
    if on_event is None:
        return None
    start = _start_event(resolved)
    stamp = {k: start[k] for k in ("task", "submission", "seed")}
    return lambda event: on_event({**event, **stamp})


def _stage(resolved: ResolvedRun, options: RunOptions) -> tuple[Layout, Ids, str]:
    """The child's inputs (opaque ids, shuffled test images) and its job file."""
    folder = resolved.folder
    layout = Layout(sandboxed=resolved.isolation == "sandbox")
    spec, digest = resolved.spec, resolved.content_sha256
    blinding = Blinding.for_run(spec.name, spec.version, digest, resolved.run.seed)
    inputs, ids = write_inputs(
        resolved.prepared, folder / "input", blinding, layout, train_subset=resolved.subset
    )
    job = {
        "submission": layout.ro(folder / "submission", f"{ROOT}/submission"),
        "task": spec.name,
        "task_info": TaskInfo.from_spec(spec).to_json(),
        "seed": resolved.run.seed,
        "device": resolved.device,
        "resume": options.resume,
        "train": json_safe(resolved.train),
        "inputs": inputs,
        "workdir": layout.rw(folder / "work", f"{ROOT}/work"),
        "output": layout.rw(folder / "output", f"{ROOT}/output"),
    }
    write_json_atomic(folder / "job.json", job)
    return layout, ids, layout.ro(folder / "job.json", f"{ROOT}/job.json")


def _run(
    resolved: ResolvedRun, options: RunOptions, layout: Layout, job_path: str, on_event
) -> tuple[ChildExit, ProcessTree, float]:
    """Start the child (in the sandbox unless isolation is none) and wait for it."""
    argv = [sys.executable, "-P", "-m", "medbench.child", job_path]
    if layout.sandboxed:
        argv = sandbox_command(
            argv,
            read_only=layout.read_only,
            writable=layout.writable,
            cuda=resolved.device.startswith("cuda"),
            chdir=f"{ROOT}/work",
        )
    env = environment_for(
        threads=options.child_threads(),
        seed=resolved.run.seed,
        workdir=layout.rw(resolved.folder / "work", f"{ROOT}/work"),
        sandboxed=layout.sandboxed,
        extra=options.env,
    )
    tree = ProcessTree.create(options.memory_limit_mb)
    t0 = time.perf_counter()
    try:
        ended = run_child(
            argv,
            env=env,
            log_path=resolved.folder / "child.log",
            timeout=options.timeout,
            tree=tree,
            on_event=on_event,
            shell_style_signals=layout.sandboxed,
        )
    finally:
        tree.close()
    return ended, tree, time.perf_counter() - t0


def _conclude(resolved, options, ended, tree, wall_s, ids, started) -> Outcome:
    """The run's record: failed with its reason, or scored."""
    output = resolved.folder / "output"
    record = _base_record(resolved, options, tree)
    record.timings = {
        "prepare_s": round(resolved.prepare_s, 3),
        "verify_s": round(resolved.verify_s, 3),
        "child_wall_s": round(wall_s, 3),
    }
    record.peak_memory_mb = ended.peak_memory_mb
    reason, child_info = _child_outcome(ended, output)
    if "child_s" in child_info:  # sandbox and interpreter start-up, medbench's child imports
        record.timings["child_start_s"] = round(max(0.0, wall_s - child_info["child_s"]), 3)
    record.timings.update(
        {
            k: round(child_info[k], 3)
            for k in ("setup_s", "fit_s", "predict_s", "output_s")
            if k in child_info
        }
    )
    record.device_name = child_info.get("device_name", resolved.device)
    record.peak_gpu_memory_mb = child_info.get("peak_gpu_memory_mb")
    record.notes = child_info.get("notes", {})
    record.cost = run_cost(
        check_reported(child_info.get("cost")),  # checked as the child's file was read
        record.timings,
        n_test=resolved.prepared.manifest["counts"]["test"],
        device=record.device_name,
        peak_memory_mb=record.peak_memory_mb,
        peak_gpu_memory_mb=record.peak_gpu_memory_mb,
    )
    damage = _damaged_caches(resolved.spec, resolved.isolation)
    reason = reason or (f"the submission changed a prepared data cache: {damage}" if damage else "")
    saved = None
    if not reason:
        try:
            t0 = time.perf_counter()
            report, saved, truth = _score(resolved, ids, output)
            record.timings["score_s"] = round(time.perf_counter() - t0, 3)
            record.scored(report_fields(report))
            t0 = time.perf_counter()
            record.gallery = _gallery(resolved, report, saved, truth)
            record.timings["gallery_s"] = round(time.perf_counter() - t0, 3)
        except PredictionError as exc:
            reason, saved = f"invalid predictions: {exc}", None
    if reason:
        record.failed(reason, ended.tail)
    record.timings["total_s"] = round(time.perf_counter() - started, 3)
    record.created = now_utc()
    outcome = Outcome(resolved.run, record.status, record.to_dict(), resolved.target, reason)
    outcome.predictions = saved
    return outcome


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
                ready.verify(full=True)  # the child could have forged the stamps too
        except ChecksumError as exc:
            damaged.append(str(exc))
            if other.name == spec.name:
                prepare(other, force=True)
            else:
                remove_tree(prepared_dir(other))
                remove_tree(answers_dir(other))
    return "; ".join(damaged)


def _score(resolved: ResolvedRun, ids: Ids, output: Path):
    """Read the child's predictions (bounded), translate their ids back, validate and score."""
    spec, prepared = resolved.spec, resolved.prepared
    truth = {split: prepared.targets(split) for split in ("test", "val")}  # verified bytes
    preds = {}
    for split in ("test", "val"):
        shapes = truth[split].shapes() if isinstance(truth[split], Ragged) else None
        try:
            path = output / f"predictions-{split}.npz"
            _regular(path)
            raw = read_predictions(path, spec, n_cases=len(ids.real[split]), shapes=shapes)
            real = unblind(raw, ids.opaque[split], ids.real[split], split=split)
            preds[split] = validate(spec, real, ids.real[split], shapes=shapes)
        except PredictionError as exc:
            raise PredictionError(
                f"on the validation split: {exc}" if split == "val" else str(exc)
            ) from None
    test = prepared.split("test", with_targets=False)
    report = score_run(spec, preds, truth, test.cases)
    saved = {s: (ids.real[s], preds[s]) for s in ("test", "val")}
    return report, saved, truth


def _regular(path: Path) -> None:
    """The child's predictions file must be a regular file (see ``supervise.open_regular``)."""
    try:
        open_regular(path).close()
    except FileNotFoundError:
        return  # read_predictions says it is missing
    except OSError as exc:
        raise PredictionError(exc.strerror or str(exc)) from None


def _gallery(resolved: ResolvedRun, report: ScoreReport, saved, truth) -> dict | None:
    """The leader-board's 'worst cases' figure of a segmentation run, beside its record: of the
    test split, or of val (``--gallery-split val``: no test image or label in it)."""
    spec = resolved.spec
    if not resolved.draws_gallery:
        return None
    split, primary = resolved.gallery_split, spec.primary_metric
    case_ids, preds = saved[split]
    if split == "test":
        scores = report.per_case[primary].to_numpy()
    else:
        scores = _val_scores(spec, preds, truth["val"], case_ids)
    images = resolved.prepared.split(split, with_targets=False).images
    higher = spec.primary.higher_is_better
    # A data set whose terms forbid sharing its images gets outlines only (the PNG is committed).
    show_images = spec.dataset not in DATASETS or DATASETS.get(spec.dataset).images_redistributable
    png = worst_cases_png(
        images,
        truth[split],
        preds,
        scores,
        case_ids,
        metric=primary,
        higher_is_better=higher,
        split=split,
        show_images=show_images,
    )
    shown = [case_ids[i] for i in worst_indices(scores, higher_is_better=higher)]
    info = {"split": split, "metric": primary, "cases": shown, "images": show_images}
    path = resolved.target.with_suffix(".worst.png")
    if png is None:
        path.unlink(missing_ok=True)  # no older run's picture (of test cases, maybe) stays
        return {**info, "file": None, "sha256": None}
    write_bytes_atomic(path, png)
    return {**info, "file": path.name, "sha256": sha256_bytes(png)}


def _val_scores(spec: TaskSpec, preds, truth, case_ids) -> np.ndarray:
    """The primary metric per validation case (what the val gallery chooses its cases by)."""
    targets = list(truth) if isinstance(truth, Ragged) else np.asarray(truth)
    cases = pd.DataFrame({"case_id": list(case_ids)})
    report = score(
        spec, preds, targets, cases, split="val", n_resamples=0, metrics=(spec.primary_metric,)
    )
    return report.per_case[spec.primary_metric].to_numpy()


def _base_record(resolved: ResolvedRun, options: RunOptions, tree: ProcessTree) -> Record:
    spec, prepared, snap = resolved.spec, resolved.prepared, resolved.snapshot
    try:
        sub_path = str(Path(resolved.run.submission).resolve().relative_to(Path.cwd()))
    except ValueError:
        sub_path = str(Path(resolved.run.submission).resolve())
    found = probe() if resolved.isolation == "sandbox" else None
    return Record(
        task={
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
        submission={
            "name": resolved.entry,
            "folder_name": resolved.manifest.name,
            "variant": resolved.variant,
            "summary": resolved.manifest.summary,
            "path": sub_path,
            "content_sha256": resolved.content_sha256,
            "files": snap.n_files if snap else None,
            "bytes": snap.n_bytes if snap else None,
        },
        seed=resolved.run.seed,
        device=resolved.device,
        isolation={
            "mode": resolved.isolation,
            "tool": found.version if found else None,
            "network": resolved.isolation != "sandbox",
            **tree.describe(),
        },
        train=json_safe(resolved.train),
        train_subset=resolved.subset.describe() if resolved.subset else None,
        primary_metric=spec.primary_metric,
        higher_is_better=spec.primary.higher_is_better,
        environment={**environment(), "cpu_threads": options.child_threads()},
    )
