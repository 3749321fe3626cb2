"""Where runs execute. ``local`` runs them one after another (each in its own child process)."""

from __future__ import annotations

from collections.abc import Sequence

from medbench.errors import MedbenchError
from medbench.runner import Event, Outcome, Run, RunOptions, run_all


class LocalExecutor:
    def run(self, runs: Sequence[Run], options: RunOptions, on_event: Event | None = None) -> list[Outcome]:
        return run_all(runs, options, on_event)


def get_executor(name: str, *, jobs: int = 1, address: str | None = None):
    if name == "local":
        return LocalExecutor()
    raise MedbenchError(f"unknown executor {name!r}; available: local")
