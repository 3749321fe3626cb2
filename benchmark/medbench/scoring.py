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
        return {k: _clean(v) for k, v in asdict(self).items()}


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
                k: {kk: _clean(vv) for kk, vv in v.items()}
                for k, v in self.operating_points.items()
            },
            "per_case": per_case_to_dict(self.per_case),
        }


def _clean(v: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN to None."""
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return None if math.isnan(v) else v
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (tuple, list)):
        return [_clean(x) for x in v]
    return v


def per_case_to_dict(frame: pd.DataFrame) -> dict[str, list]:
    return {c: [_clean(v) for v in frame[c].tolist()] for c in frame.columns}


def per_case_from_dict(data: dict[str, list]) -> pd.DataFrame:
    frame = pd.DataFrame(data)
    for c in frame.columns:
        if c != "case_id" and frame[c].dtype == object:
            frame[c] = pd.to_numeric(frame[c], errors="coerce")
    return frame


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
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
) -> MetricValue:
    """A whole-sample statistic (``statistic(indices)``) with a percentile bootstrap over cases."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(statistic(np.arange(n)))
        if n_resamples <= 0 or n < 2:
            return MetricValue(value, None, None, "", n, 0)
        rng = np.random.default_rng(seed)
        draws = np.array([statistic(rng.integers(0, n, n)) for _ in range(n_resamples)])
    draws = draws[~np.isnan(draws)]
    if draws.size == 0:
        return MetricValue(value, None, None, method, n, 0)
    low, high = np.percentile(draws, [2.5, 97.5])
    return MetricValue(value, float(low), float(high), method, n, 0)


# --- per kind ------------------------------------------------------------------------------------


def _rule(rule: Any) -> Any:
    return tuple(rule) if isinstance(rule, list) else rule


def score_binary(spec, y, s, cases, *, val=None, n_resamples=N_RESAMPLES):
    y = np.asarray(y, np.int64)
    s = np.asarray(s, np.float64)
    summary: dict[str, MetricValue] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        auc = M.roc_auc(y, s)
        low, high = M.delong_ci(y, s) if not math.isnan(auc) else (None, None)
    summary["auc"] = MetricValue(auc, low, high, "DeLong 95 % CI", len(y), int(math.isnan(auc)))
    group = spec.option("group_column")
    if group and group in cases.columns:
        for g in sorted(cases[group].unique()):
            name = f"auc_{g}"
            if name in spec.metric_names:
                mask = (cases[group] == g).to_numpy()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    a = M.roc_auc(y[mask], s[mask])
                    lo, hi = M.delong_ci(y[mask], s[mask]) if not math.isnan(a) else (None, None)
                summary[name] = MetricValue(
                    a, lo, hi, "DeLong 95 % CI", int(mask.sum()), int(math.isnan(a))
                )
    per_case = pd.DataFrame(
        {"case_id": list(cases["case_id"]), "y_true": y, "y_score": s, "brier": (s - y) ** 2}
    )
    points: dict[str, dict[str, Any]] = {}
    for name, rule in spec.option("operating_points", ()) or ():
        if val is None:
            continue
        y_val, s_val = val
        threshold = float(
            M.operating_point(np.asarray(y_val), np.asarray(s_val, np.float64), rule=_rule(rule))
        )
        pred = s >= threshold
        hits_pos = pred[y == 1].astype(float)
        hits_neg = (~pred[y == 0]).astype(float)
        sens = mean_with_ci(hits_pos, n_resamples=n_resamples)
        spec_ = mean_with_ci(hits_neg, n_resamples=n_resamples)
        summary[f"sensitivity@{name}"] = sens
        summary[f"specificity@{name}"] = spec_
        per_case[f"pred@{name}"] = pred.astype(int)
        points[name] = {
            "rule": list(rule) if isinstance(rule, (tuple, list)) else rule,
            "threshold": threshold,
            "sensitivity": sens.value,
            "specificity": spec_.value,
        }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        summary["ece"] = statistic_with_ci(
            lambda i: M.expected_calibration_error(y[i], s[i]),
            len(y),
            n_resamples=min(n_resamples, 500),
        )
    summary["brier"] = mean_with_ci(per_case["brier"].to_numpy(), n_resamples=n_resamples)
    return summary, {}, per_case, points


def score_multiclass(spec, y, p, cases, *, val=None, n_resamples=N_RESAMPLES):
    y = np.asarray(y, np.int64)
    p = np.asarray(p, np.float64)
    k = len(spec.classes)
    pred = p.argmax(axis=1)
    correct = (pred == y).astype(float)
    summary: dict[str, MetricValue] = {}
    # Whole-sample statistics get a (looped) bootstrap; fewer resamples keep scoring near a second.
    boots = min(n_resamples, 1000)
    stats = {
        "qwk": lambda i: M.quadratic_weighted_kappa(y[i], pred[i], n_classes=k),
        "auc": lambda i: M.multiclass_auc(y[i], p[i]),
    }
    for name in spec.metric_names:
        if name == "accuracy":
            summary[name] = mean_with_ci(correct, n_resamples=n_resamples)
        elif name in stats:
            summary[name] = statistic_with_ci(stats[name], len(y), n_resamples=boots)
    per_class: dict[str, dict[str, MetricValue]] = {}
    if "recall" in spec.metric_names:
        for j, cls in enumerate(spec.classes):
            hits = correct[y == j]
            per_class[cls] = {"recall": mean_with_ci(hits, n_resamples=n_resamples)}
        recalls = [per_class[c]["recall"].value for c in spec.classes]
        summary["recall"] = MetricValue(
            float(np.nanmean(recalls)) if not all(map(math.isnan, recalls)) else float("nan"),
            method="mean over classes (balanced accuracy)",
            n=len(y),
        )
    per_case = pd.DataFrame(
        {"case_id": list(cases["case_id"]), "y_true": y, "y_pred": pred, "correct": correct}
    )
    for j in range(k):
        per_case[f"p{j}"] = p[:, j]
    return summary, per_class, per_case, {}


def score_segmentation(
    spec, truth, pred, cases, *, val=None, n_resamples=N_RESAMPLES, metrics=None
):
    """``metrics``: compute only these of the task's metrics (validation needs the primary one,
    not HD95, whose distance transforms cost more than a GPU epoch of a small task)."""
    truth = np.asarray(truth, bool)
    pred = np.asarray(pred, bool)
    classes = spec.classes
    names = tuple(metrics) if metrics is not None else spec.metric_names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tables = {"dice": M.dice(truth, pred), "iou": M.iou(truth, pred)}
        if "pixel_accuracy" in names or "pixel_error" in names:
            tables["pixel_accuracy"] = M.pixel_accuracy(truth, pred)
        if "hd95" in names:
            spacing = float(spec.option("pixel_spacing_mm", 1.0))
            tables["hd95"] = M.hd95(truth, pred, spacing=spacing)
    per_case = pd.DataFrame({"case_id": list(cases["case_id"])})
    summary: dict[str, MetricValue] = {}
    per_class: dict[str, dict[str, MetricValue]] = {c: {} for c in classes}
    for metric, table in tables.items():
        for j, cls in enumerate(classes):
            per_case[f"{metric}_{cls}"] = table[:, j]
            if metric in names:
                per_class[cls][metric] = mean_with_ci(table[:, j], n_resamples=n_resamples)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            case_mean = np.nanmean(table, axis=1) if table.shape[1] else np.full(len(table), np.nan)
        per_case[metric] = case_mean
        if metric in names:
            summary[metric] = mean_with_ci(case_mean, n_resamples=n_resamples)
    if "pixel_error" in names:
        per_case["pixel_error"] = 1 - per_case["pixel_accuracy"]
        summary["pixel_error"] = mean_with_ci(
            per_case["pixel_error"].to_numpy(), n_resamples=n_resamples
        )
    if "v_rand" in names or "v_info" in names:
        scores = np.array(
            [
                M.rand_scores(
                    _interior_segments(t[0]), M.membrane_segments(q[0].astype(np.float32))
                )
                for t, q in zip(truth, pred, strict=True)
            ]
        )
        per_case["v_rand"], per_case["v_info"] = scores[:, 0], scores[:, 1]
        summary["v_rand"] = mean_with_ci(scores[:, 0], n_resamples=n_resamples)
        summary["v_info"] = mean_with_ci(scores[:, 1], n_resamples=n_resamples)
    ordered = {m: summary[m] for m in names if m in summary}
    return ordered, {c: v for c, v in per_class.items() if v}, per_case, {}


def _interior_segments(membrane: np.ndarray) -> np.ndarray:
    """True segments of an ISBI slice: 4-connected components of the cell interior (membrane = 0)."""
    return M.membrane_segments(membrane.astype(np.float32))


def score_instances(spec, truth, pred, cases, *, val=None, n_resamples=N_RESAMPLES):
    names = spec.metric_names
    per_case = pd.DataFrame({"case_id": list(cases["case_id"])})
    per_case["dsb_ap"] = [M.dsb_average_precision(t, p) for t, p in zip(truth, pred, strict=True)]
    if "f1_50" in names:
        per_case["f1_50"] = [
            M.instance_f1(t, p, threshold=0.5) for t, p in zip(truth, pred, strict=True)
        ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fg = [
            M.dice((np.asarray(t) > 0)[None, None], (np.asarray(p) > 0)[None, None])[0, 0]
            for t, p in zip(truth, pred, strict=True)
        ]
    per_case["dice"] = fg
    summary: dict[str, MetricValue] = {}
    if "seg" in names:
        seg = np.array(
            [M.seg_measure(t, p) for t, p in zip(truth, pred, strict=True)], np.float64
        ).reshape(-1, 2)
        per_case["seg_matched"], per_case["seg_objects"] = seg[:, 0], seg[:, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            per_case["seg"] = seg[:, 0] / seg[:, 1]
        # Dataset SEG is a ratio of sums over images (CTC definition), not a mean of ratios.
        summary["seg"] = statistic_with_ci(
            lambda i: seg[i, 0].sum() / seg[i, 1].sum() if seg[i, 1].sum() else float("nan"),
            len(seg),
            n_resamples=min(n_resamples, 1000),
        )
    for metric in ("dsb_ap", "f1_50", "dice"):
        if metric in names:
            summary[metric] = mean_with_ci(per_case[metric].to_numpy(), n_resamples=n_resamples)
    per_class = {spec.classes[0]: {"dice": summary["dice"]}} if "dice" in summary else {}
    return {m: summary[m] for m in names if m in summary}, per_class, per_case, {}


_SCORERS = {
    "binary": score_binary,
    "multiclass": score_multiclass,
    "multilabel-segmentation": score_segmentation,
    "instance-segmentation": score_instances,
}


def score(
    spec: TaskSpec | str,
    predictions: Any,
    truth: Any,
    cases: pd.DataFrame,
    *,
    split: str = "test",
    val: tuple[Any, Any] | None = None,
    n_resamples: int = N_RESAMPLES,
) -> ScoreReport:
    """Score validated ``predictions`` (in the order of ``cases``) against ``truth``.

    ``val`` = ``(val_truth, val_predictions)`` for binary tasks: operating points are chosen there.
    """
    spec = get_task(spec) if isinstance(spec, str) else spec
    summary, per_class, per_case, points = _SCORERS[spec.kind](
        spec, truth, predictions, cases.reset_index(drop=True), val=val, n_resamples=n_resamples
    )
    return ScoreReport(spec.name, split, summary, per_class, per_case, points)


def validation_score(task: Any, targets: Any, predictions: Any) -> float:
    """The task's primary metric on validation data, without intervals (for trainers).

    ``task`` is a TaskInfo or a task name; ``predictions`` are in the shapes of the contract.
    """
    spec = get_task(task if isinstance(task, str) else task.name)
    n = len(targets)
    cases = pd.DataFrame({"case_id": [str(i) for i in range(n)]})
    if spec.kind == "multilabel-segmentation":
        predictions = np.asarray(predictions)
        predictions = predictions if predictions.dtype == bool else predictions >= 0.5
    only = {"metrics": (spec.primary_metric,)} if spec.kind == "multilabel-segmentation" else {}
    summary, *_ = _SCORERS[spec.kind](spec, targets, predictions, cases, n_resamples=0, **only)
    return summary[spec.primary_metric].value
