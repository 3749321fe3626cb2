"""The task registry: every task medbench scores, by name."""

from __future__ import annotations

from medbench.registry import Registry
from medbench.tasks.spec import InputSpec, Metric, Reference, TaskSpec

TASKS: Registry[TaskSpec] = Registry("task")


def get_task(name: str) -> TaskSpec:
    """The spec of task ``name``; an unknown name raises with the closest names."""
    return TASKS.get(name)


def all_tasks() -> list[TaskSpec]:
    return [TASKS.get(n) for n in TASKS.names()]


from medbench.tasks import catalog  # noqa: E402,F401  (registers the tasks)

__all__ = ["TASKS", "InputSpec", "Metric", "Reference", "TaskSpec", "all_tasks", "get_task"]
