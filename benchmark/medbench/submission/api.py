"""The plug-in contract: what a submission implements and what it is given.

A submission sees a :class:`TaskInfo` (what a competitor may know), labelled train and
validation :class:`Dataset` objects, and an unlabelled test :class:`Dataset` of images and
case ids only. The test set is built from a copy of the test images in the run folder: nothing
on it (attribute, method or file path) leads to the test labels.
"""

from __future__ import annotations

import logging
import random
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

Prediction = np.ndarray | list[np.ndarray]


@dataclass(frozen=True)
class TaskInfo:
    """What a competitor may know about a task: never data, never test labels."""

    name: str
    kind: str
    classes: tuple[str, ...]
    input_size: tuple[int, int] | None  # (H, W); None = native size per image
    channels: int
    metrics: tuple[str, ...]
    primary_metric: str
    higher_is_better: bool
    train: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # What the images are ("chest radiograph", "fundus photograph", ...; see
    # medbench.tasks.spec.MODALITIES): choose augmentations from this, not from the task's name.
    modality: str = ""

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @classmethod
    def from_spec(cls, spec: Any, train: Mapping[str, Any] | None = None) -> TaskInfo:
        return cls(
            name=spec.name,
            kind=spec.kind,
            classes=tuple(spec.classes),
            input_size=spec.input.size,
            channels=spec.input.channels,
            metrics=spec.metric_names,
            primary_metric=spec.primary_metric,
            higher_is_better=spec.primary.higher_is_better,
            train=MappingProxyType(dict(train or {})),
            modality=spec.modality,
        )

    def to_json(self) -> dict[str, Any]:
        """Everything but ``train`` as JSON values (the job file the sandboxed child reads, so
        the child need not import the task catalogue)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "classes": list(self.classes),
            "input_size": None if self.input_size is None else list(self.input_size),
            "channels": self.channels,
            "metrics": list(self.metrics),
            "primary_metric": self.primary_metric,
            "higher_is_better": self.higher_is_better,
            "modality": self.modality,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], train: Mapping[str, Any] | None = None) -> TaskInfo:
        """The inverse of :meth:`to_json`."""
        size = data["input_size"]
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            classes=tuple(data["classes"]),
            input_size=None if size is None else (int(size[0]), int(size[1])),
            channels=int(data["channels"]),
            metrics=tuple(data["metrics"]),
            primary_metric=str(data["primary_metric"]),
            higher_is_better=bool(data["higher_is_better"]),
            train=MappingProxyType(dict(train or {})),
            modality=str(data["modality"]),
        )


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global generator and, when it is loaded, torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:  # importing torch only to seed it would cost seconds
        sys.modules["torch"].manual_seed(seed)


@dataclass
class RunContext:
    """Where and how a run happens: device, seed, a scratch folder, a logger, the ``[train]`` table."""

    device: str
    seed: int
    workdir: Path
    logger: logging.Logger
    train: Mapping[str, Any]
    quiet: bool = True
    resume: bool = False
    # Called by trainers once per epoch with a dict (epoch, loss, val metric, images/s, ...).
    on_epoch: Any = None
    notes: dict[str, str] = field(default_factory=dict)

    def option(self, name: str, default: Any = None) -> Any:
        return self.train.get(name, default)

    def note(self, key: str, value: str) -> None:
        """State a fact about the run for its record (``notes``), e.g. the pretrained weights used
        and their SHA-256. What the submission says, recorded as said."""
        self.notes[str(key)[:100]] = str(value)[:500]


class Dataset:
    """Images (and, for train/val, targets) in case order.

    ``images`` is an ``(n, H, W, C)`` uint8 array (memory-mapped, read-only) or, for tasks at
    native size, a sequence of ``(H_i, W_i, C)`` arrays. ``targets`` (train/val only) is ``(n,)``
    int labels, ``(n, C, H, W)`` bool masks, or a sequence of ``(H_i, W_i)`` label maps.
    Indexing yields ``{"image", "case_id"}`` plus ``"target"`` when labelled.
    """

    __slots__ = ("_images", "_case_ids", "_targets")

    def __init__(self, images: Any, case_ids: tuple[str, ...], targets: Any = None) -> None:
        if len(images) != len(case_ids) or (targets is not None and len(targets) != len(case_ids)):
            raise ValueError("images, targets and case ids must have the same length")
        self._images = images
        self._case_ids = tuple(case_ids)
        self._targets = targets

    @property
    def images(self) -> Any:
        return self._images

    @property
    def case_ids(self) -> tuple[str, ...]:
        return self._case_ids

    @property
    def labelled(self) -> bool:
        return self._targets is not None

    @property
    def targets(self) -> Any:
        if self._targets is None:
            raise AttributeError("this is a test set: it holds images and case ids only")
        return self._targets

    def __len__(self) -> int:
        return len(self._case_ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = {"image": np.asarray(self._images[i]), "case_id": self._case_ids[i]}
        if self._targets is not None:
            item["target"] = np.asarray(self._targets[i])
        return item

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        kind = "labelled" if self.labelled else "unlabelled"
        return f"Dataset({len(self)} cases, {kind})"


class Submission(ABC):
    """A competitor's method. Implement :meth:`fit` and :meth:`predict`.

    Prediction shapes, in the order of ``test``: binary ``(n,)`` probability of the positive
    class; multiclass ``(n, K)`` probabilities summing to 1; multilabel segmentation
    ``(n, C, H, W)`` probabilities or booleans at the task's size; instance segmentation a list of
    ``(H_i, W_i)`` integer label maps (0 = background).
    """

    @abstractmethod
    def fit(self, task: TaskInfo, train: Dataset, val: Dataset, ctx: RunContext) -> None: ...

    @abstractmethod
    def predict(self, task: TaskInfo, test: Dataset, ctx: RunContext) -> Prediction: ...

    def cost(self, task: TaskInfo) -> dict[str, Any] | None:
        """What the fitted model costs, called once after :meth:`fit`; None: not stated.

        A dict of ``params`` and ``trainable_params`` (counts), ``flops_per_image`` (FLOPs of one
        forward pass of one image, 2 per multiply-add), ``flops_input`` (the ``[H, W]`` they were
        counted at) and ``flops_input_note`` (why that size), each None when not known. The
        record shows them as reported by the run (:mod:`medbench.cost`); ``TorchSubmission``
        counts its model.
        """
        return None
