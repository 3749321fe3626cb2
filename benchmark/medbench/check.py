"""``medbench check``: load a submission and run fit/predict on tiny synthetic data of every task it
enters, in seconds, reporting any contract violation (wrong shape, NaN, missing cases, exceptions).

The submission's code runs in the sandbox, as in a run (:mod:`medbench.sandbox`): a maintainer
checking a contributed folder runs its code, which must not reach their files. The sandboxed
child is ``python -P -m medbench.check SNAPSHOT RESULTS.json [TASK...]``; the parent reads its
results file with the same bounds and schema checks as a run's.
"""

from __future__ import annotations

import logging
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medbench.errors import MedbenchError
from medbench.predictions import to_npz_dict, validate
from medbench.submission.api import Dataset, RunContext, TaskInfo
from medbench.submission.loader import load_entry, read_manifest
from medbench.tasks import TaskSpec, get_task

CHECK_TRAIN = {"epochs": 1, "batch_size": 4, "max_minutes": 1.0, "num_workers": 0}
NATIVE_SIZES = ((48, 64), (64, 56))


@dataclass(frozen=True)
class CheckResult:
    task: str
    ok: bool
    message: str
    seconds: float


def synthetic_split(spec: TaskSpec, n: int, rng: np.random.Generator) -> Dataset:
    """``n`` random cases shaped like ``spec``'s data, with targets of every class."""
    ids = tuple(f"check-{i:03d}" for i in range(n))
    c = spec.input.channels
    if spec.input.size is None:
        images, targets = [], []
        for i in range(n):
            h, w = NATIVE_SIZES[i % len(NATIVE_SIZES)]
            images.append(rng.integers(0, 256, (h, w, c), dtype=np.uint8))
            labels = np.zeros((h, w), np.uint16)
            labels[4:14, 4:14], labels[20:30, 24:36] = 1, 2
            targets.append(labels)
        return Dataset(images, ids, targets)
    h, w = spec.input.size
    images = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
    if spec.kind == "multilabel-segmentation":
        targets = rng.random((n, len(spec.classes), h, w)) > 0.7
    else:
        targets = np.arange(n) % len(spec.classes)
    return Dataset(images, ids, targets)


def check_task(folder: Path, spec: TaskSpec, *, device: str = "cpu", seed: int = 0) -> CheckResult:
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    manifest = read_manifest(folder)
    train_table = {**manifest.train_for(spec.name), **CHECK_TRAIN}
    task = TaskInfo.from_spec(spec, train_table)
    train, val, test = (synthetic_split(spec, n, rng) for n in (8, 4, 4))
    unlabelled = Dataset(test.images, test.case_ids)
    try:
        submission = load_entry(manifest)
        with tempfile.TemporaryDirectory(prefix="medbench-check-") as tmp:
            ctx = RunContext(
                device=device,
                seed=seed,
                workdir=Path(tmp),
                logger=logging.getLogger("medbench.check"),
                train=task.train,
            )
            submission.fit(task, train, val, ctx)
            pred = submission.predict(task, unlabelled, ctx)
        shapes = [im.shape[:2] for im in test.images] if spec.input.size is None else None
        validate(spec, to_npz_dict(test.case_ids, pred), test.case_ids, shapes=shapes)
    except MedbenchError as exc:
        return CheckResult(
            spec.name, False, f"{type(exc).__name__}: {exc}", time.perf_counter() - started
        )
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return CheckResult(
            spec.name,
            False,
            f"{type(exc).__name__} in fit/predict: {exc} ({Path(where.filename).name}:{where.lineno})",
            time.perf_counter() - started,
        )
    return CheckResult(
        spec.name, True, "fit and predict keep the contract", time.perf_counter() - started
    )


def check_here(
    folder: str | Path, *, tasks: list[str] | None = None, device: str = "cpu"
) -> list[CheckResult]:
    """Check ``folder`` in this process (what the sandboxed child does)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    names = [t for t in manifest.tasks if not tasks or t in tasks]
    return [check_task(folder, get_task(t), device=device) for t in names]


CHECK_TIMEOUT_S = 900.0
_RESULT_FIELDS = {"task": str, "ok": bool, "message": str, "seconds": (int, float)}


def check_submission(
    folder: str | Path,
    *,
    tasks: list[str] | None = None,
    device: str = "cpu",
    isolation: str | None = None,
    timeout: float = CHECK_TIMEOUT_S,
) -> list[CheckResult]:
    """Check ``folder`` on every task it enters (or ``tasks``), in the sandbox by default."""
    from medbench.sandbox import resolve_isolation

    folder = Path(folder)
    manifest = read_manifest(folder)
    for t in tasks or []:
        get_task(t)
    names = [t for t in manifest.tasks if not tasks or t in tasks]
    if resolve_isolation(isolation)[0] == "none":
        return check_here(folder, tasks=names, device=device)
    return _check_sandboxed(folder, names, timeout)


def _check_sandboxed(folder: Path, names: list[str], timeout: float) -> list[CheckResult]:
    import sys

    from medbench.limits import ProcessTree
    from medbench.sandbox import ROOT, child_env, command
    from medbench.submission.snapshot import snapshot
    from medbench.supervise import read_child_json, run_child

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medbench-check-") as tmp:
        snap = snapshot(folder, Path(tmp) / "submission")
        for sub in ("output", "work"):
            (Path(tmp) / sub).mkdir()
        argv = [sys.executable, "-P", "-m", "medbench.check", f"{ROOT}/submission"]
        argv += [f"{ROOT}/output/check.json", *names]
        argv = command(
            argv,
            read_only={f"{ROOT}/submission": snap.path},
            writable={f"{ROOT}/output": Path(tmp) / "output", f"{ROOT}/work": Path(tmp) / "work"},
            cuda=False,
            chdir=f"{ROOT}/work",
        )
        tree = ProcessTree.create(None)
        try:
            ended = run_child(
                argv,
                env=child_env(f"{ROOT}/work"),
                log_path=Path(tmp) / "check.log",
                timeout=timeout,
                tree=tree,
                on_event=None,
                shell_style_signals=True,
            )
        finally:
            tree.close()
        try:
            found = read_child_json(Path(tmp) / "output" / "check.json", {"results": _results_ok})
            results = [CheckResult(**r) for r in found["results"]]
        except ValueError as exc:
            why = ended.reason or f"{exc} (exit code {ended.code})"
            last = ended.tail.strip().splitlines()[-1:] if ended.tail.strip() else []
            seconds = time.perf_counter() - started
            return [
                CheckResult(
                    t,
                    False,
                    f"the check itself failed: {why}{': ' + last[0] if last else ''}",
                    seconds,
                )
                for t in names
            ]
    if [r.task for r in results] != names:
        raise MedbenchError(
            f"the sandboxed check answered for {[r.task for r in results]}, not {names}"
        )
    return results


def _results_ok(value) -> bool:
    return isinstance(value, list) and all(
        isinstance(r, dict)
        and set(r) == set(_RESULT_FIELDS)
        and all(isinstance(r[k], t) for k, t in _RESULT_FIELDS.items())
        for r in value
    )


def main(argv: list[str] | None = None) -> int:
    """The sandboxed child: check SNAPSHOT on TASK..., write the results as JSON."""
    import sys
    from dataclasses import asdict

    from medbench.data.files import write_json_atomic

    folder, out, *names = sys.argv[1:] if argv is None else argv
    results = check_here(folder, tasks=names)
    write_json_atomic(out, {"results": [asdict(r) for r in results]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
