"""Fixtures of the benchmarks: a private MEDBENCH_HOME, one torch thread, the machine's load.

Benchmarks disabled (the default in pyproject) run each body once, so the correctness
assertions run in CI; the heavy cases and every timed assertion need ``--benchmark-enable``,
because a timed assertion in a loaded CI run would be flaky.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module")
def private_home(medbench_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A MEDBENCH_HOME for one benchmark module: ``prepare(..., force=True)`` here never
    replaces a cache that other tests of the session are reading."""
    home = tmp_path_factory.mktemp("bench-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDBENCH_HOME", str(home))
        yield home


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread while the test runs.

    On a small machine shared with other jobs, two OpenMP threads spend much of their time
    waiting for each other at barriers (a descheduled thread stalls the other), so throughput
    swings by an order of magnitude between runs; one thread measures the work, not the waits.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _record_load(request: pytest.FixtureRequest) -> Iterator[None]:
    """Store the 1-minute load average before and after each benchmark in its extra_info."""
    if "benchmark" not in request.fixturenames:
        yield
        return
    benchmark = request.getfixturevalue("benchmark")
    before = os.getloadavg()[0]
    yield
    benchmark.extra_info["cpus"] = os.cpu_count()
    benchmark.extra_info["load_1min_before_after"] = [
        round(before, 2),
        round(os.getloadavg()[0], 2),
    ]
