"""The same runs give the same records whichever executor ran them (seeded, CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medbench.errors import MedbenchError
from medbench.executors import ProcessExecutor, get_executor
from medbench.results import read_record
from medbench.runner import Run, RunOptions

ROOT = Path(__file__).resolve().parents[2]
COMPARED = ("status", "metrics", "per_class", "per_case", "operating_points", "train", "seed")

RUNS = [
    Run(ROOT / "submissions" / "dummy", "toy-lesions", 0),
    Run(ROOT / "submissions" / "dummy", "toy-anatomy", 0),
    Run(ROOT / "submissions" / "unet", "toy-anatomy", 0),
    Run(ROOT / "submissions" / "unet", "toy-anatomy", 1),
]


def run_with(executor, results: Path) -> dict:
    options = RunOptions(device="cpu", results_dir=results, train_overrides={"epochs": 1})
    outcomes = executor.run(RUNS, options)
    assert [o.status for o in outcomes] == ["ok"] * len(RUNS), [o.message for o in outcomes]
    return {
        (o.run.submission.name, o.run.task, o.run.seed): {
            k: read_record(o.path)[k] for k in COMPARED
        }
        for o in outcomes
    }


@pytest.fixture(scope="module")
def local_records(tmp_path_factory) -> dict:
    return run_with(get_executor("local"), tmp_path_factory.mktemp("local"))


def test_process_pool_gives_the_local_records(local_records, tmp_path):
    assert run_with(ProcessExecutor(jobs=2, gpus=[]), tmp_path) == local_records


def test_ray_gives_the_local_records(local_records, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'medbench[ray]'")
    try:
        records = run_with(get_executor("ray", jobs=2), tmp_path)
    finally:
        ray.shutdown()
    assert records == local_records


def test_seeds_differ_so_the_comparison_means_something(local_records):
    a = local_records[("unet", "toy-anatomy", 0)]["per_case"]
    b = local_records[("unet", "toy-anatomy", 1)]["per_case"]
    assert a != b


def test_the_process_pool_never_puts_two_runs_on_one_gpu(monkeypatch, tmp_path):
    import threading
    import time

    from medbench import executors

    busy: dict[str, int] = {}
    peak = {"n": 0}
    lock = threading.Lock()

    def fake_guarded(run, options, on_event):
        gpu = options.env["CUDA_VISIBLE_DEVICES"]
        with lock:
            busy[gpu] = busy.get(gpu, 0) + 1
            peak["n"] = max(peak["n"], busy[gpu])
        time.sleep(0.05)
        with lock:
            busy[gpu] -= 1
        return executors.Outcome(run, "ok", message=gpu)

    monkeypatch.setattr(executors, "_guarded", fake_guarded)
    runs = [Run(ROOT / "submissions" / "dummy", "toy-lesions", s) for s in range(8)]
    outcomes = ProcessExecutor(jobs=4, gpus=[0, 1]).run(runs, RunOptions(device="cuda"))
    assert peak["n"] == 1  # never two runs on one GPU at once
    assert {o.message for o in outcomes} == {"0", "1"}  # both GPUs were used


def test_unknown_executor_is_refused():
    with pytest.raises(MedbenchError, match="choose local, process or ray"):
        get_executor("slurm")
