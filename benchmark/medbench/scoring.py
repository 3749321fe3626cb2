"""Predictions + hidden truth -> :class:`ScoreReport`: every metric of a task, per case, per class,
summarised with 95 % confidence intervals.

Conventions: per-case values that are undefined (e.g. Dice with both masks empty) are NaN,
excluded from means and counted in ``n_undefined``. Operating points of binary tasks are chosen
on the validation predictions and applied to test; without validation predictions they are not
reported (never chosen on test).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from medbench import metrics as M
from medbench.data.arrays import Ragged
from medbench.metric_specs import DELONG, MEAN, STATISTIC, Bound, Cases, Context, point_threshold
from medbench.metrics import UndefinedMetricWarning
from medbench.results import json_safe
from medbench.tasks import TaskSpec, get_task

N_RESAMPLES = 2000


@dataclass(frozen=True)
class MetricValue:
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    method: str = ""
    n: int = 0
    n_undefined: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: json_safe(v) for k, v in asdict(self).items()}


@dataclass
class ScoreReport:
    task: str
    split: str
    summary: dict[str, MetricValue]
    per_class: dict[str, dict[str, MetricValue]] = field(default_factory=dict)
    per_case: pd.DataFrame = field(default_factory=pd.DataFrame)
    operating_points: dict[str, dict[str, Any]] = field(default_factory=dict)

    def value(self, metric: str) -> float:
        return self.summary[metric].value

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "split": self.split,
            "summary": {k: v.to_dict() for k, v in self.summary.items()},
            "per_class": {
                c: {k: v.to_dict() for k, v in m.items()} for c, m in self.per_class.items()
            },
            "operating_points": {
                k: {kk: json_safe(vv) for kk, vv in v.items()}
                for k, v in self.operating_points.items()
            },
            "per_case": per_case_to_dict(self.per_case),
        }


def per_case_to_dict(frame: pd.DataFrame) -> dict[str, list]:
    return {c: [json_safe(v) for v in frame[c].tolist()] for c in frame.columns}


# --- summaries -----------------------------------------------------------------------------------


def mean_with_ci(per_case: np.ndarray, *, n_resamples: int, seed: int = 0) -> MetricValue:
    """Mean over defined cases with a percentile-bootstrap CI over cases."""
    per_case = np.asarray(per_case, np.float64)
    defined = per_case[~np.isnan(per_case)]
    n_undefined = int(per_case.size - defined.size)
    if defined.size == 0:
        return MetricValue(float("nan"), None, None, "mean", int(per_case.size), n_undefined)
    value = float(defined.mean())
    if n_resamples <= 0 or defined.size < 2:
        return MetricValue(value, None, None, "mean", int(per_case.size), n_undefined)
    low, high = M.bootstrap_ci(defined, n_resamples=n_resamples, seed=seed)
    return MetricValue(
        value, float(low), float(high), "mean, bootstrap 95 % CI", int(per_case.size), n_undefined
    )


def statistic_with_ci(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    n_resamples: int,
    seed: int = 0,
    method: str = "bootstrap 95 % CI",
    many: Callable[[np.ndarray], np.ndarray] | None = None,
) -> MetricValue:
    """A whole-sample statistic (``statistic(indices)``) with a percentile bootstrap over cases.

    ``many``: the statistic of every row of a matrix of indices at once, when it has one."""
    value = float(statistic(np.arange(n)))
    if n_resamples <= 0 or n < 2:
        return MetricValue(value, None, None, "", n, 0)
    if many is not None:
        draws = M.bootstrap_statistic(many, n, n_resamples=n_resamples, seed=seed, batched=True)
    else:
        draws = M.bootstrap_statistic(statistic, n, n_resamples=n_resamples, seed=seed)
    draws = draws[~np.isnan(draws)]
    if draws.size == 0:
        return MetricValue(value, None, None, method, n, 0)
    low, high = np.percentile(draws, [2.5, 97.5])
    return MetricValue(value, float(low), float(high), method, n, 0)


# --- one loop over the task's metric specs ---------------------------------------------------------


def context_for(spec: TaskSpec, cases: pd.DataFrame | None = None, val=None) -> Context:
    return Context(spec.kind, tuple(spec.classes), dict(spec.options), cases, val)


def _available(bound: Bound, cases: Cases, context: Context) -> bool:
    """Whether ``bound`` can be computed: an operating point needs validation predictions, a
    group AUC its group column, every metric its columns."""
    if bound.spec.column is not None and bound.spec.resolved_column(bound.parameter) not in cases:
        return False
    if bound.spec.parameter == "point":
        return f"pred@{bound.parameter}" in cases
    if bound.spec.parameter == "group":
        column = context.option("group_column")
        return context.cases is not None and column in context.cases.columns
    return True


def _summary(bound: Bound, cases: Cases, context: Context, n_resamples: int) -> MetricValue:
    ci, n = bound.spec.ci, len(next(iter(cases.values())))
    if ci == MEAN:
        return mean_with_ci(
            bound.spec.values(cases, context, bound.parameter), n_resamples=n_resamples
        )
    if ci == STATISTIC:
        boots = min(n_resamples, bound.spec.max_resamples or n_resamples)
        return statistic_with_ci(
            lambda i: bound.reduce(cases, i, context),
            n,
            n_resamples=boots,
            many=(lambda i: bound.reduce_many(cases, i, context))
            if bound.spec.reduce_many_fn is not None
            else None,
        )
    value = bound.reduce(cases, np.arange(n), context)
    if ci == DELONG:
        y, s = cases["y_true"], cases["y_score"]
        if bound.parameter:
            keep = (context.cases[context.option("group_column")] == bound.parameter).to_numpy()
            y, s = y[keep], s[keep]
        low, high = M.delong_ci(y, s) if not math.isnan(value) else (None, None)
        return MetricValue(value, low, high, "DeLong 95 % CI", len(y), int(math.isnan(value)))
    return MetricValue(value, method="mean over classes (balanced accuracy)", n=n)


def _per_class(bound: Bound, cases: Cases, context: Context, n_resamples: int) -> dict:
    out = {}
    for j, cls in enumerate(context.classes):
        if bound.spec.class_values is not None:
            values = bound.spec.class_values(cases, context, j)
        elif f"{bound.column}_{cls}" in cases:
            values = cases[f"{bound.column}_{cls}"]
        else:
            continue
        out[cls] = mean_with_ci(values, n_resamples=n_resamples)
    return out


def _operating_points(spec: TaskSpec, context: Context, summary: dict) -> dict[str, dict]:
    points = {}
    for name, rule in spec.option("operating_points", ()) or ():
        found = {w: summary.get(f"{w}@{name}") for w in ("sensitivity", "specificity")}
        if context.val is None or not any(found.values()):
            continue
        points[name] = {
            "rule": list(rule) if isinstance(rule, (tuple, list)) else rule,
            "threshold": point_threshold(context, name),
            **{w: v.value if v else None for w, v in found.items()},
        }
    return points


def score(
    spec: TaskSpec | str,
    predictions: Any,
    truth: Any,
    cases: pd.DataFrame,
    *,
    split: str = "test",
    val: tuple[Any, Any] | None = None,
    n_resamples: int = N_RESAMPLES,
    metrics: tuple[str, ...] | None = None,
) -> ScoreReport:
    """Score validated ``predictions`` (in the order of ``cases``) against ``truth``.

    Each of the task's metrics (or of ``metrics``) is looked up in the registry of metric specs:
    its per-case columns are computed (each column function once), then its value and interval.
    ``val`` = ``(val_truth, val_predictions)`` for binary tasks: operating points are chosen there.
    """
    spec = get_task(spec) if isinstance(spec, str) else spec
    cases = cases.reset_index(drop=True)
    context = context_for(spec, cases, val)
    names = metrics or spec.metric_names
    columns: Cases = {}
    done: set = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # counted, not printed
        for name in names:
            bound = spec.metric(name).bound
            if (bound.spec.columns, bound.parameter) not in done:
                columns.update(bound.columns(truth, predictions, context))
                done.add((bound.spec.columns, bound.parameter))
    return summarise(
        spec, columns, cases, split=split, val=val, n_resamples=n_resamples, metrics=names
    )


def summarise(
    spec: TaskSpec,
    columns: Cases,
    cases: pd.DataFrame,
    *,
    split: str = "test",
    val: tuple[Any, Any] | None = None,
    n_resamples: int = N_RESAMPLES,
    metrics: tuple[str, ...] | None = None,
) -> ScoreReport:
    """The report of per-case ``columns`` (the metrics' sufficient statistics): each metric whose
    columns are there, with its interval. ``medbench rescore`` calls it on a record's columns."""
    context = context_for(spec, cases, val)
    summary: dict[str, MetricValue] = {}
    per_class: dict[str, dict[str, MetricValue]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for name in metrics or spec.metric_names:
            bound = spec.metric(name).bound
            if not _available(bound, columns, context):
                continue
            summary[bound.name] = _summary(bound, columns, context, n_resamples)
            if bound.spec.per_class:
                for cls, value in _per_class(bound, columns, context, n_resamples).items():
                    per_class.setdefault(cls, {})[bound.name] = value
        points = _operating_points(spec, context, summary)
    per_case = pd.DataFrame({"case_id": list(cases["case_id"]), **columns})
    return ScoreReport(spec.name, split, summary, per_class, per_case, points)


def score_run(
    spec: TaskSpec,
    predictions: dict[str, Any],
    truth: dict[str, Any],
    cases: pd.DataFrame,
    *,
    split: str = "test",
    n_resamples: int = N_RESAMPLES,
) -> ScoreReport:
    """Score validated ``predictions[split]`` against ``truth[split]`` (``cases``: that split's
    case table); a binary task's operating points are chosen on ``"val"`` when both dicts hold it.
    The one entry point of ``medbench run``, ``medbench score`` and ``medbench verify``."""

    def targets(t: Any) -> Any:
        return list(t) if isinstance(t, Ragged) else np.asarray(t)

    val = None
    if spec.kind == "binary" and split != "val" and "val" in predictions and "val" in truth:
        val = (targets(truth["val"]), predictions["val"])
    return score(
        spec,
        predictions[split],
        targets(truth[split]),
        cases,
        split=split,
        val=val,
        n_resamples=n_resamples,
    )


def report_fields(report: ScoreReport) -> dict[str, Any]:
    """What a result record holds of a score report."""
    data = report.to_dict()
    return {
        "metrics": data["summary"],
        "per_class": data["per_class"],
        "operating_points": json_safe(report.operating_points),  # an infinite threshold: null
        "per_case": data["per_case"],
    }


def validation_score(task: Any, targets: Any, predictions: Any) -> float:
    """The task's primary metric on validation data, without intervals (for trainers).

    ``task`` is a TaskInfo or a task name; ``predictions`` are in the shapes of the contract.
    Only the primary metric's columns are computed (not HD95's distance transforms, say).
    """
    spec = get_task(task if isinstance(task, str) else task.name)
    cases = pd.DataFrame({"case_id": [str(i) for i in range(len(targets))]})
    if spec.kind == "multilabel-segmentation":
        predictions = np.asarray(predictions)
        predictions = predictions if predictions.dtype == bool else predictions >= 0.5
    report = score(spec, predictions, targets, cases, n_resamples=0, metrics=(spec.primary_metric,))
    return report.summary[spec.primary_metric].value
