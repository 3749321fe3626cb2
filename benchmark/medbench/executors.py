"""Where runs execute.

- ``local``: one after another on this machine (each run in its own child process).
- ``process``: a pool of ``jobs`` concurrent runs on this machine; with several GPUs each run is
  pinned to one (``CUDA_VISIBLE_DEVICES``) and no GPU holds two runs.
- ``ray``: each (submission, task, seed) is a Ray task asking for ``num_gpus=1`` when the run
  wants a GPU (else one CPU); the worker fits, predicts and scores, the driver writes the record
  exactly as the local executor does.

Whatever the executor, the skip-if-done rule is applied by the driver before a run is sent, and
records are sealed and written by the driver only, so results folders never need to be shared.
The driver also tells the listener (``on_event``) when each run has ended, with a ``done`` event
sent after the record is written; that is when ``--mlflow`` logs the run.
"""

from __future__ import annotations

import contextlib
import os
import queue
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from medbench.errors import Interrupted, MedbenchError, describe_os_error
from medbench.runner import (
    Event,
    Outcome,
    Run,
    RunOptions,
    already_done,
    compute_run,
    default_device,
    execute,
    resolve,
    write_outcome,
)
from medbench.supervise import check_stop, request_stop, stop_reason


def _guarded(run: Run, options: RunOptions, on_event: Event | None) -> Outcome:
    """One run; a harness-side error becomes an ``error`` outcome, a stop request propagates."""
    try:
        check_stop()
        outcome = execute(run, options, on_event)
    except Interrupted:
        raise
    except MedbenchError as exc:
        outcome = Outcome(run, "error", message=f"{type(exc).__name__}: {exc}")
    except OSError as exc:  # a blocked or unwritable folder of the harness: this run only
        outcome = Outcome(run, "error", message=f"OSError: {describe_os_error(exc)}")
    return _done(outcome, on_event)


def _done(outcome: Outcome, on_event: Event | None) -> Outcome:
    """Tell ``on_event`` that a run ended, once its record (if any) is written: a tracker reads
    the record from ``path`` then."""
    if on_event:
        on_event(
            {
                "event": "done",
                "task": outcome.run.task,
                "seed": outcome.run.seed,
                "status": outcome.status,
                "path": None if outcome.path is None else str(outcome.path),
            }
        )
    return outcome


class LocalExecutor:
    """Runs one after another."""

    def run(
        self, runs: Sequence[Run], options: RunOptions, on_event: Event | None = None
    ) -> list[Outcome]:
        return [_guarded(r, options, on_event) for r in runs]


def visible_gpus() -> list[int]:
    """CUDA device indices this process may use (from CUDA_VISIBLE_DEVICES and /dev/nvidiaN,
    without importing torch)."""
    import re

    present = sorted(
        int(m.group(1))
        for p in Path("/dev").glob("nvidia*")
        if (m := re.fullmatch(r"nvidia(\d+)", p.name))
    )
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return list(range(len(present)))
    names = [v for v in visible.split(",") if v.strip() and v.strip() != "-1"]
    return list(range(min(len(names), len(present))))


class ProcessExecutor:
    """``jobs`` runs at a time on this machine, one GPU per run when there are GPUs."""

    def __init__(self, jobs: int, gpus: list[int] | None = None) -> None:
        if jobs < 1:
            raise MedbenchError(f"--jobs must be >= 1; got {jobs}")
        self.jobs = jobs
        self.gpus = visible_gpus() if gpus is None else gpus

    def run(
        self, runs: Sequence[Run], options: RunOptions, on_event: Event | None = None
    ) -> list[Outcome]:
        device = options.device or default_device()
        uses_gpu = device.startswith("cuda") and bool(self.gpus)
        workers = min(self.jobs, len(self.gpus)) if uses_gpu else self.jobs
        free: queue.Queue[int] = queue.Queue()
        for g in self.gpus:
            free.put(g)

        def one(run: Run) -> Outcome:
            if not uses_gpu:
                return _guarded(run, options, on_event)
            gpu = free.get()  # blocks until a GPU is free: never two runs on one GPU
            try:
                pinned = replace(
                    options, device="cuda", env={**options.env, "CUDA_VISIBLE_DEVICES": str(gpu)}
                )
                return _guarded(run, pinned, on_event)
            finally:
                free.put(gpu)

        pool = ThreadPoolExecutor(max_workers=max(1, workers))
        try:
            return list(pool.map(one, runs))
        except BaseException:
            # Ctrl-C (or a stop request) while runs are going: every worker kills its child.
            if stop_reason() is None:
                request_stop("interrupted")
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _ray_compute(run: Run, options: RunOptions) -> Outcome:
    # Runs on a Ray worker: no progress events cross the cluster, only the finished outcome.
    try:
        return compute_run(run, options, None)
    except MedbenchError as exc:
        return Outcome(run, "error", message=f"{type(exc).__name__}: {exc}")


class RayExecutor:
    """Each run is a Ray task; records are written by this driver."""

    def __init__(self, address: str | None = None, jobs: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise MedbenchError(
                'the ray executor needs Ray: pip install "medbench[ray]" (or pip install "ray[default]")'
            ) from None
        self.ray = ray
        self.address = address
        self.jobs = jobs

    def run(
        self, runs: Sequence[Run], options: RunOptions, on_event: Event | None = None
    ) -> list[Outcome]:
        ray = self.ray
        if not ray.is_initialized():
            kwargs = (
                {"address": self.address}
                if self.address
                else {"num_cpus": self.jobs}
                if self.jobs
                else {}
            )
            ray.init(
                include_dashboard=False, log_to_driver=False, configure_logging=False, **kwargs
            )
        device = options.device or default_device()
        wants_gpu = device.startswith("cuda")
        remote = ray.remote(num_gpus=1 if wants_gpu else 0, num_cpus=1, max_retries=0)(_ray_compute)
        outcomes: dict[int, Outcome] = {}
        pending = {}
        for i, run in enumerate(runs):
            try:
                done = already_done(resolve(run, options, take_snapshot=False), options)
            except MedbenchError as exc:
                done = Outcome(run, "error", message=f"{type(exc).__name__}: {exc}")
            if done is not None:
                outcomes[i] = _done(done, on_event)
                continue
            # On the worker, Ray assigns the GPU via CUDA_VISIBLE_DEVICES; "cuda" means that one.
            pending[
                remote.remote(run, replace(options, device="cuda" if wants_gpu else device))
            ] = i
        waiting = list(pending)
        try:
            while waiting:
                check_stop()
                ready, waiting = ray.wait(waiting, num_returns=1, timeout=0.2)
                for ref in ready:
                    i = pending[ref]
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # the worker died: others go on
                        outcome = Outcome(runs[i], "error", message=f"Ray task failed: {exc}")
                    outcomes[i] = _done(write_outcome(outcome), on_event)
        except BaseException:
            # Killing a worker ends its child too: the sandbox dies with its parent.
            for ref in waiting:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
        return [outcomes[i] for i in range(len(runs))]


def get_executor(name: str, *, jobs: int = 1, address: str | None = None):
    if name == "local":
        return LocalExecutor()
    if name == "process":
        return ProcessExecutor(jobs)
    if name == "ray":
        return RayExecutor(address, jobs if jobs > 1 else None)
    raise MedbenchError(f"unknown executor {name!r}; choose local, process or ray")
