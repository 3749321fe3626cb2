"""``medbench reproduce RECORD``: run exactly that submission content, task version and seed again
and compare every metric with the record.

On a CPU with the same seed the difference must be 0 (the trainer is deterministic there). On a
GPU, kernels such as atomics in convolutions' backward pass are not bit-reproducible; the stated
tolerance is :data:`GPU_TOLERANCE` on each metric.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

from medbench.errors import MedbenchError, RecordError
from medbench.results import read_record
from medbench.runner import Event, Run, RunOptions, compute_run
from medbench.submission.loader import content_hash
from medbench.tasks import get_task

GPU_TOLERANCE = 0.02


@dataclass(frozen=True)
class Difference:
    metric: str
    recorded: float | None
    reproduced: float | None
    difference: float | None
    within: bool


def reproduce(
    record_file: str | Path,
    *,
    submission: str | Path | None = None,
    device: str | None = None,
    on_event: Event | None = None,
) -> tuple[dict, list[Difference], float]:
    """Re-run the record's run; return (new record, per-metric differences, tolerance used)."""
    record = read_record(record_file)
    if record["status"] != "ok":
        raise RecordError(f"{record_file} records a failed run; there is nothing to reproduce")
    if record.get("derived"):
        raise MedbenchError(
            f"{record_file} is the fine-to-coarse score of a run on "
            f"{record['derived']['fine_task']}: reproduce that run's record"
        )
    if record.get("ensemble"):
        raise MedbenchError(
            f"{record_file} is an ensemble of other runs, not a run: reproduce its members, or "
            "check it with `medbench verify` (which re-derives it from their predictions)"
        )
    folder = Path(submission or record["submission"]["path"])
    if not folder.is_dir():
        raise MedbenchError(f"submission folder {folder} not found; pass --submission PATH")
    found = content_hash(folder)
    if found != record["submission"]["content_sha256"]:
        raise MedbenchError(
            f"{folder} is not the content that produced {record_file}: content hash "
            f"{found[:12]}, recorded {record['submission']['content_sha256'][:12]}"
        )
    spec = get_task(record["task"]["name"])
    if spec.version != record["task"]["version"]:
        raise MedbenchError(
            f"{record_file} was made with {spec.name} version {record['task']['version']}; "
            f"this medbench has version {spec.version}"
        )
    device = device or record["device"]
    with tempfile.TemporaryDirectory(prefix="medbench-reproduce-") as tmp:
        # The record's CPU thread count too: float sums on a CPU depend on it.
        threads = (record.get("environment") or {}).get("cpu_threads")
        options = RunOptions(
            device=device,
            results_dir=Path(tmp),
            force=True,
            train_overrides=dict(record.get("train") or {}),
            threads=threads,
            variant=record["submission"].get("variant"),
            gallery_split=(record.get("gallery") or {}).get("split"),
        )
        fraction = (record.get("train_subset") or {}).get("fraction")  # --train-fraction runs
        run = Run(folder, spec.name, int(record["seed"]), fraction)
        outcome = compute_run(run, options, on_event)
    new = outcome.record or {}
    if outcome.status != "ok":
        raise MedbenchError(f"the reproduction failed: {outcome.message}")
    if (new.get("train_subset") or {}).get("sha256") != (record.get("train_subset") or {}).get(
        "sha256"
    ):
        raise MedbenchError("the reproduction trained on other training cases than the record")
    if new["task"]["data_sha256"] != record["task"]["data_sha256"]:
        raise MedbenchError(
            "the task's data differs from the record's (data hash "
            f"{new['task']['data_sha256'][:12]} vs {record['task']['data_sha256'][:12]})"
        )
    tolerance = 0.0 if device == "cpu" else GPU_TOLERANCE
    rows = []
    for name, old in record["metrics"].items():
        a, b = old.get("value"), new["metrics"].get(name, {}).get("value")
        if a is None or b is None:
            rows.append(Difference(name, a, b, None, a is None and b is None))
            continue
        diff = b - a
        rows.append(
            Difference(name, a, b, diff, math.isclose(diff, 0.0, abs_tol=tolerance + 1e-12))
        )
    return new, rows, tolerance
