"""The child process of a run: load the submission, fit, predict, write predictions. Nothing else.

Started by the runner (inside the sandbox, see :mod:`medbench.sandbox`) as
``python -P -m medbench.child JOB.json``. The job names the snapshot of the submission, the
effective ``[train]`` table, and for each split the files of its arrays and its case table of
opaque ids (test: images only, in a shuffled order). The child never has the test labels: they are
not in its file system. Progress goes to stdout as ``MEDBENCH_EVENT {json}`` lines.

Everything the child writes (predictions, ``child-result.json``, ``child-error.json``, its log) is
data the parent checks, never state it trusts: the submission's code runs in this process and can
write anything.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

EVENT = "MEDBENCH_EVENT "
RESULT = "child-result.json"
ERROR = "child-error.json"


def emit(kind: str, **data: Any) -> None:
    sys.stdout.write(EVENT + json.dumps({"event": kind, **data}, default=float) + "\n")
    sys.stdout.flush()


def _dataset(split: dict[str, Any]):
    """A Dataset from the job's description of one split: its case table and array files."""
    import csv

    from medbench.data.arrays import load_array_files
    from medbench.submission.api import Dataset

    with open(split["cases"], newline="", encoding="utf-8") as f:
        ids = tuple(row["case_id"] for row in csv.DictReader(f))
    images = load_array_files(split["images"])
    targets = load_array_files(split["targets"]) if split.get("targets") else None
    return Dataset(images, ids, targets)


def in_memory(images):
    """A copy detached from its file: the submission predicts on val from memory."""
    from medbench.data.arrays import Ragged

    if isinstance(images, Ragged):
        return Ragged(np.array(images.data), np.array(images.index))
    return np.array(images)


def _write_predictions(target: Path, case_ids, predictions) -> None:
    from medbench.data.files import atomic_path
    from medbench.errors import MedbenchError
    from medbench.predictions import to_npz_dict

    arrays = to_npz_dict(case_ids, predictions)
    try:
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
    except OSError as exc:  # a full disk, a read-only folder: the harness's problem, said so
        raise MedbenchError(
            f"cannot write the predictions file {target}: {exc.strerror or exc}"
        ) from None


def _reported_cost(submission, task) -> dict[str, Any] | None:
    """The submission's statement of its model's cost (``Submission.cost``), checked here so
    that a wrong one fails with the submission's name rather than as a malformed result file."""
    from medbench.cost import check_reported
    from medbench.errors import SubmissionError

    try:
        return check_reported(submission.cost(task))
    except ValueError as exc:
        raise SubmissionError(
            f"{type(submission).__name__}.cost() returned a bad value: {exc}"
        ) from None


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    from medbench.submission.api import Dataset, RunContext, TaskInfo, seed_everything
    from medbench.submission.loader import load_entry, read_manifest

    started = time.perf_counter()
    manifest = read_manifest(job["submission"], check_task_names=False)  # checked by the parent
    submission = load_entry(manifest)
    seed_everything(job["seed"])
    # what the parent's catalogue says of the task (importing the catalogue here would cost
    # about a second: pandas, scipy and every metric)
    task = TaskInfo.from_json(job["task_info"], job["train"])
    logger = logging.getLogger("medbench.submission")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")
    workdir = Path(job["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(
        device=job["device"],
        seed=job["seed"],
        workdir=workdir,
        logger=logger,
        train=task.train,
        quiet=True,
        resume=job.get("resume", False),
        on_epoch=lambda info: emit("epoch", **info),
    )
    train = _dataset(job["inputs"]["train"])
    val = _dataset(job["inputs"]["val"])
    test = _dataset(job["inputs"]["test"])
    emit("fit", n_train=len(train), n_val=len(val))
    t0 = time.perf_counter()
    setup_s = t0 - started  # the manifest, the model's imports, the data
    submission.fit(task, train, val, ctx)
    fit_s = time.perf_counter() - t0
    cost = _reported_cost(submission, task)
    emit("predict", n_test=len(test))
    t0 = time.perf_counter()
    test_pred = submission.predict(task, test, ctx)
    predict_s = time.perf_counter() - t0
    # Validation predictions choose operating points; the submission sees val images only here.
    t0 = time.perf_counter()
    val_pred = submission.predict(task, Dataset(in_memory(val.images), val.case_ids), ctx)
    out = Path(job["output"])
    _write_predictions(out / "predictions-test.npz", test.case_ids, test_pred)
    _write_predictions(out / "predictions-val.npz", val.case_ids, val_pred)
    info: dict[str, Any] = {
        "setup_s": setup_s,
        "fit_s": fit_s,
        "predict_s": predict_s,
        "output_s": time.perf_counter() - t0,  # val predictions and writing both
        "child_s": time.perf_counter() - started,
        "device_name": job["device"],
        "peak_gpu_memory_mb": None,
        "notes": dict(list(ctx.notes.items())[:20]),
        "cost": cost,
    }
    torch = sys.modules.get("torch")
    if torch is not None and job["device"].startswith("cuda") and torch.cuda.is_available():
        info["device_name"] = torch.cuda.get_device_name()
        info["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return info


def main(argv: list[str] | None = None) -> int:
    from medbench.data.files import write_json_atomic

    argv = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(argv[0]).read_text())
    try:
        info = run_job(job)
    except BaseException as exc:
        import traceback

        from medbench.errors import MedbenchError

        traceback.print_exc()
        write_json_atomic(
            Path(job["output"]) / ERROR,
            {
                "type": type(exc).__name__,
                "message": str(exc)[:4000],
                "medbench_error": isinstance(exc, MedbenchError),
            },
        )
        return 3
    write_json_atomic(Path(job["output"]) / RESULT, info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
