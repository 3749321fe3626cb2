"""The frozen description of a task: what it is, where its data comes from, how it is scored.

A :class:`TaskSpec` is data only. The code that reads a data set lives in
:mod:`medbench.data.datasets`; the spec names it by ``dataset`` and ``target``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from medbench.errors import UnknownNameError
from medbench.metric_specs import Bound, check_parameter, lookup

Kind = Literal["binary", "multiclass", "multilabel-segmentation", "instance-segmentation"]
KINDS: tuple[str, ...] = (
    "binary",
    "multiclass",
    "multilabel-segmentation",
    "instance-segmentation",
)
SPLITS: tuple[str, ...] = ("train", "val", "test")
# What the images are: reference submissions choose their augmentations from this (and the
# kind and channels), never from a task's name, so a new task is never trained without them.
MODALITIES: tuple[str, ...] = (
    "chest radiograph",
    "fundus photograph",
    "ultrasound",
    "electron microscopy",
    "light microscopy",
    "synthetic",
)


@dataclass(frozen=True)
class InputSpec:
    """Image size as ``(height, width)`` (``None``: native size per image) and channels."""

    size: tuple[int, int] | None
    channels: int

    def describe(self) -> str:
        size = "native" if self.size is None else f"{self.size[0]}x{self.size[1]}"
        return f"{size}, {'grey' if self.channels == 1 else 'RGB'}"


@dataclass(frozen=True)
class Metric:
    """A metric a task reports: a registered :class:`~medbench.metric_specs.MetricSpec` by name
    (``family@parameter`` for families), with the task's own wording of it (default: the spec's)."""

    name: str
    description: str = ""


@dataclass(frozen=True)
class TaskMetric:
    """A task's metric resolved against the registry: its spec, bound to its parameter."""

    name: str
    description: str
    bound: Bound

    @property
    def higher_is_better(self) -> bool:
        return self.bound.higher_is_better

    @property
    def per_class(self) -> bool:
        return self.bound.spec.per_class


@dataclass(frozen=True)
class Reference:
    """A published number to compare against (shown as an unranked anchor row)."""

    source: str
    metric: str
    value: float
    note: str
    per_class: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Subgroups:
    """A partition of the test cases the leaderboard reports separately (hidden stratification).

    ``column``: where a case's value comes from: ``"group"`` (the split file's group column),
    ``"case_id"`` or ``"y_true"`` (the scored truth, for classification). Each case takes the
    first ``(label, pattern)`` whose regular expression matches the whole value; cases that match
    none are left out. Committed with the task: never handed to a submission.
    """

    name: str
    column: str
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class TaskSpec:
    """Everything that defines a task; bump ``version`` when splits, preparation or metrics change."""

    name: str
    version: int
    kind: Kind
    classes: tuple[str, ...]
    input: InputSpec
    dataset: str  # name in medbench.data.datasets
    target: str  # which annotation of the data set this task predicts
    title: str
    description: str
    split_file: str  # file name under medbench/tasks/splits/
    split_sha256: str
    split_note: str
    metrics: tuple[Metric, ...]
    primary_metric: str
    policies: tuple[tuple[str, str], ...] = ()
    references: tuple[Reference, ...] = ()
    # Task-specific scoring options, e.g. pixel spacing for HD95 or the operating-point rules;
    # ``gallery_split`` ("val" or "test", default test): the split of the worst-cases gallery.
    options: tuple[tuple[str, object], ...] = field(default=())
    modality: str = ""  # one of MODALITIES
    # A binary view of a finer multi-class task (Esteva et al. 2017): (fine task, the fine classes
    # that are this task's positive class). A run on the fine task is also scored here, with
    # P(positive) = the sum of those classes' probabilities (medbench.coarse).
    coarse_of: tuple[str, tuple[int, ...]] | None = None
    # Partitions of the test cases shown per subgroup on the leaderboard (medbench.leaderboard.subgroups)
    subgroups: tuple[Subgroups, ...] = ()

    def metric(self, name: str) -> TaskMetric:
        """The task's metric ``name`` (KeyError if the task does not report it)."""
        for m in self.metrics:
            if m.name == name:
                bound = lookup(m.name, self.kind)
                return TaskMetric(m.name, m.description or bound.spec.description, bound)
        raise KeyError(name)

    def all_metrics(self) -> tuple[TaskMetric, ...]:
        return tuple(self.metric(m.name) for m in self.metrics)

    @property
    def primary(self) -> TaskMetric:
        return self.metric(self.primary_metric)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)

    def option(self, name: str, default: object = None) -> object:
        return dict(self.options).get(name, default)

    def check(self) -> list[str]:
        """Problems with this spec (empty when it is valid)."""
        problems = []
        if self.kind not in KINDS:
            problems.append(f"kind {self.kind!r} is not one of {KINDS}")
        if not self.classes:
            problems.append("no classes")
        if len(set(self.classes)) != len(self.classes):
            problems.append(f"duplicate class names in {self.classes}")
        if self.kind == "binary" and len(self.classes) != 2:
            problems.append(f"a binary task has 2 classes (negative, positive); got {self.classes}")
        if self.primary_metric not in self.metric_names:
            problems.append(f"primary metric {self.primary_metric!r} not in {self.metric_names}")
        if len(set(self.metric_names)) != len(self.metric_names):
            problems.append("duplicate metric names")
        if self.version < 1:
            problems.append("version must be >= 1")
        if len(self.split_sha256) != 64:
            problems.append("split_sha256 is not a SHA-256 hex digest")
        if self.modality not in MODALITIES:
            problems.append(f"modality must be one of {MODALITIES}; got {self.modality!r}")
        if self.input.channels not in (1, 3):
            problems.append(f"channels must be 1 or 3; got {self.input.channels}")
        if self.option("gallery_split", "test") not in ("val", "test"):
            problems.append(
                f"option gallery_split must be 'val' or 'test'; got {self.option('gallery_split')!r}"
            )
        for ref in self.references:
            if ref.metric not in self.metric_names:
                problems.append(f"reference {ref.source!r} uses unknown metric {ref.metric!r}")
        for m in self.metrics:  # every metric is a registered spec for this kind of task
            try:
                problem = check_parameter(
                    lookup(m.name, self.kind), dict(self.options), self.classes
                )
            except UnknownNameError as exc:
                problem = str(exc)
            if problem:
                problems.append(problem)
        return problems
