"""nnU-Net v2's evaluation summary, ``summary.json``, from a segmentation record.

The structure is the one ``compute_metrics_on_folder`` builds and ``save_summary_json`` writes
(MIC-DKFZ/nnUNet, ``nnunetv2/evaluation/evaluate_predictions.py``), written here from the record's
per-case scores, not from masks:

- ``metric_per_case``: a list, one entry per case, ``{"metrics": {label: {metric: value}},
  "prediction_file": ..., "reference_file": ...}``;
- ``mean``: label -> metric -> the mean over cases, NaN excluded (nnU-Net's ``np.nanmean``);
- ``foreground_mean``: metric -> the mean of ``mean`` over the labels other than 0 (``np.mean``:
  undefined if one label's mean is).

Labels are the task's classes in the order of ``TaskSpec.classes``, numbered from 1 (medbench
has no background class; every label is foreground), as strings, as nnU-Net writes integer keys.
medbench's classes are separate masks that may overlap (lungs and clavicles): in nnU-Net's terms
each is a region of one label. An instance-segmentation task has one label, its foreground.

Metrics: ``Dice`` and ``IoU`` per case, from the record's ``dice_<class>``/``iou_<class>``
columns; for an instance task from ``foreground_dice``, with IoU = Dice / (2 - Dice) (the exact
relation of the two for one pair of masks). nnU-Net's ``TP``, ``FP``, ``FN``, ``TN``, ``n_pred``
and ``n_ref`` are pixel counts, which a record does not keep (only per-case values): they are
left out, not guessed. medbench cases are ids in the task's split, not image files: both
``prediction_file`` and ``reference_file`` hold the case id. A case where a metric is undefined
(both masks empty: nnU-Net's NaN) has null. Keys are sorted, as ``save_summary_json`` sorts them.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from medbench.errors import RecordError
from medbench.exports.source import Source
from medbench.leaderboard.export import rounded

KINDS = ("multilabel-segmentation", "instance-segmentation")
METRICS = ("Dice", "IoU")


def labels(source: Source) -> dict[str, str]:
    """nnU-Net label (as a JSON key) -> medbench class: ``{"1": "lungs", "2": "heart", ...}``."""
    return {str(j): c for j, c in enumerate(source.spec.classes, start=1)}


def _values(source: Source, name: str) -> np.ndarray:
    column = source.column(name)
    if not all(
        v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in column
    ):
        raise RecordError(f"result record {source.path}: per-case {name!r} must hold numbers")
    return np.array([math.nan if v is None else float(v) for v in column], np.float64)


def per_case_metrics(source: Source) -> dict[str, dict[str, np.ndarray]]:
    """label -> ``{"Dice": (n_cases,), "IoU": (n_cases,)}``; NaN where undefined."""
    if source.kind == "instance-segmentation":
        dice = _values(source, "foreground_dice")
        with np.errstate(invalid="ignore"):
            return {"1": {"Dice": dice, "IoU": dice / (2.0 - dice)}}
    present = {k[len("dice_") :] for k in source.record["per_case"] if k.startswith("dice_")}
    if present != set(source.spec.classes):
        raise RecordError(
            f"result record {source.path} has per-class Dice of {sorted(present)}; task "
            f"{source.spec.name} has classes {list(source.spec.classes)}"
        )
    return {
        label: {
            "Dice": _values(source, f"dice_{cls}"),
            "IoU": _values(source, f"iou_{cls}"),
        }
        for label, cls in labels(source).items()
    }


def _nanmean(values: np.ndarray) -> float:
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else math.nan


def summary(source: Source) -> dict[str, Any]:
    """The ``summary.json`` object of one segmentation record (numbers rounded to 6 decimals)."""
    table = per_case_metrics(source)
    means = {label: {m: _nanmean(v[m]) for m in METRICS} for label, v in table.items()}
    foreground = {m: float(np.mean([means[label][m] for label in means])) for m in METRICS}
    cases = [
        {
            "metrics": {
                label: {m: rounded(v[m][i]) for m in METRICS} for label, v in table.items()
            },
            "prediction_file": case_id,
            "reference_file": case_id,
        }
        for i, case_id in enumerate(source.case_ids)
    ]
    return {
        "foreground_mean": {m: rounded(v) for m, v in foreground.items()},
        "mean": {label: {m: rounded(v) for m, v in ms.items()} for label, ms in means.items()},
        "metric_per_case": cases,
    }


def render(source: Source) -> str:
    return json.dumps(summary(source), indent=2, sort_keys=True, allow_nan=False) + "\n"
