"""Nested, stratified, hashed training subsets: the x axis of a data-efficiency curve.

Gulshan et al. (2016) trained on subsets of their development set to see how performance grows
with the number of images. ``medbench run --train-fraction F`` does the same: the model sees only
a fraction ``F`` of the task's training cases; validation and test never change.

How the subset is drawn, so that it is the same on every machine, for every entry and every seed
(entries are then compared on the same training data, and a curve's points differ only in how
much of it they saw):

- each training case gets a key, the SHA-256 of ``<task>/<case id>``; within each stratum the cases
  are ordered by key;
- a stratum of ``n`` cases gives its first ``max(1, floor(F * n + 0.5))`` (half rounds up);
- strata are the class label for classification tasks, and the split file's ``group`` column
  (image type, sequence) for segmentation tasks that have one; otherwise all cases are one stratum.

So a 10 % subset is the start of every larger one (nested), and each stratum keeps its share
(stratified, up to rounding). The record states the fraction, the counts and the SHA-256 of the
subset's sorted case ids.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from medbench.errors import MedbenchError
from medbench.tasks import TaskSpec
from medbench.tasks.splits import load_split

CLASSIFICATION = ("binary", "multiclass")


@dataclass(frozen=True)
class TrainSubset:
    fraction: float
    indices: np.ndarray  # positions in the prepared train split, ascending
    case_ids: tuple[str, ...]
    of: int  # training cases in the full split
    strata: str | None  # "label", "group" or None

    @property
    def sha256(self) -> str:
        return hashlib.sha256("\n".join(sorted(self.case_ids)).encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        """What the record says about the subset."""
        return {
            "fraction": self.fraction,
            "n": len(self.case_ids),
            "of": self.of,
            "strata": self.strata,
            "sha256": self.sha256,
            "method": "nested, stratified, hashed (medbench.data.subsets)",
        }


def check_fraction(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MedbenchError(f"--train-fraction must be a number in (0, 1]; got {value!r}")
    if not 0 < value <= 1:
        raise MedbenchError(f"--train-fraction must be in (0, 1]; got {value:g}")
    return float(value)


def case_key(task: str, case_id: str) -> str:
    return hashlib.sha256(f"{task}/{case_id}".encode()).hexdigest()


def strata_for(
    spec: TaskSpec, case_ids: tuple[str, ...], labels: Any
) -> tuple[list[Any], str | None]:
    """The stratum of each training case (see the module docstring)."""
    if spec.kind in CLASSIFICATION and labels is not None:
        return [int(v) for v in np.asarray(labels).reshape(len(case_ids), -1)[:, 0]], "label"
    split = load_split(spec)
    if "group" in split.columns:
        groups = dict(zip(split["case_id"].astype(str), split["group"].astype(str), strict=True))
        return [groups.get(c, "") for c in case_ids], "group"
    return [0] * len(case_ids), None


def draw(
    spec: TaskSpec, case_ids: tuple[str, ...], strata: list[Any], fraction: float
) -> np.ndarray:
    """The subset's positions (ascending): per stratum, the first cases by key."""
    by_stratum: dict[Any, list[int]] = {}
    for i, s in enumerate(strata):
        by_stratum.setdefault(s, []).append(i)
    chosen: list[int] = []
    for members in by_stratum.values():
        members.sort(key=lambda i: case_key(spec.name, case_ids[i]))
        k = max(1, math.floor(fraction * len(members) + 0.5))
        chosen += members[:k]
    return np.array(sorted(chosen), dtype=np.int64)


def train_subset(spec: TaskSpec, cases: pd.DataFrame, labels: Any, fraction: float) -> TrainSubset:
    """The ``fraction`` subset of a prepared train split (its case table and targets)."""
    fraction = check_fraction(fraction)
    case_ids = tuple(str(c) for c in cases["case_id"])
    strata, kind = strata_for(spec, case_ids, labels)
    indices = draw(spec, case_ids, strata, fraction)
    return TrainSubset(fraction, indices, tuple(case_ids[i] for i in indices), len(case_ids), kind)
