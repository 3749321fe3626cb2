"""Every metric medbench reports, defined once: a :class:`MetricSpec` per metric, in :data:`METRICS`.

A spec says what a metric is (name, the task kinds it applies to, direction, description,
reference), which **per-case columns** it needs (its sufficient statistics: ``y_true``/``y_score``
for an AUC, the per-case Dice of every class for a mean Dice, matched Jaccard sum and object count
for SEG...), how to **reduce** them to the value on any subset of cases, and how its 95 % interval
is made (DeLong; a bootstrap of a per-case mean; a bootstrap of the whole-sample statistic).
Scoring (:mod:`medbench.scoring`), the leaderboard's paired tests and rank intervals, and
``medbench verify`` all call these functions: a number, its interval and its rank come from one
definition.

Names are unique across kinds: ``auc`` is the binary AUC (DeLong), ``macro_auc`` the multi-class
one-vs-rest mean; ``dice`` is the mean over a segmentation's classes, ``foreground_dice`` the Dice
of all objects of an instance map against all true ones. A family takes a parameter after ``@``:
``sensitivity@youden`` (at an operating point the task names), ``accuracy@0.5`` (at a fixed
threshold), ``auc@shenzhen`` (on one value of the task's group column). A catalogue entry naming a
metric that does not exist for its kind fails at import.

For a metric that is a mean of per-case values, the per-case value is its sufficient statistic;
medbench stores those, not TP/FP/FN counts, since no metric it reports pools pixels over cases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from medbench import metrics as M
from medbench.errors import UnknownNameError
from medbench.registry import Registry

Cases = dict[str, np.ndarray]  # per-case columns, each (n_cases,)
MEAN = "bootstrap of the mean"
STATISTIC = "bootstrap of the statistic"
DELONG = "DeLong"
NO_CI = "none"

# Names records of earlier versions used for metrics since renamed: (kind, old) -> new.
LEGACY_NAMES: dict[tuple[str, str], str] = {
    ("multiclass", "auc"): "macro_auc",
    ("instance-segmentation", "dice"): "foreground_dice",
    ("binary", "auc_shenzhen"): "auc@shenzhen",
    ("binary", "auc_montgomery"): "auc@montgomery",
}


@dataclass(frozen=True)
class Context:
    """What a metric may know of its task when it is computed."""

    kind: str
    classes: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    cases: pd.DataFrame | None = None  # the case table (group columns such as the hospital)
    val: tuple[Any, Any] | None = None  # (truth, predictions) on val: operating points

    def option(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)


Columns = Callable[[Any, Any, Context, str], Cases]  # (truth, pred, context, parameter)


@dataclass(frozen=True)
class MetricSpec:
    """One metric. ``column``: the value is the mean of this per-case column (NaN excluded);
    otherwise ``reduce(cases, idx, context, parameter)`` computes it on the cases ``idx``."""

    name: str
    kinds: tuple[str, ...]
    higher_is_better: bool
    description: str
    reference: str
    columns: Columns
    ci: str  # DELONG | MEAN | STATISTIC | NO_CI
    column: str | None = None
    reduce_fn: Callable[[Cases, np.ndarray, Context, str], float] | None = None
    # The same reduction on a whole (n_resamples, k) matrix of case indices at once (a bootstrap
    # without a Python loop); None: ``reduce`` row by row.
    reduce_many_fn: Callable[[Cases, np.ndarray, Context, str], np.ndarray] | None = None
    # MEAN metrics that are not a plain column: the vector whose mean is the value (sensitivity:
    # the hits among the positives), so the interval resamples exactly those cases.
    mean_of: Callable[[Cases, Context, str], np.ndarray] | None = None
    per_class: bool = False  # also reported per class (from "<column>_<class>" or class_values)
    class_values: Callable[[Cases, Context, int], np.ndarray] | None = None
    max_resamples: int | None = None  # a looped whole-sample bootstrap uses fewer resamples
    parameter: str = ""  # what the text after "@" names: "point", "threshold", "group" or ""

    def values(self, cases: Cases, context: Context, parameter: str = "") -> np.ndarray:
        """The per-case values whose mean is the metric (MEAN metrics only)."""
        if self.mean_of is not None:
            return self.mean_of(cases, context, parameter)
        return cases[self.resolved_column(parameter)]

    def resolved_column(self, parameter: str = "") -> str:
        assert self.column is not None, self.name
        return self.column.format(p=parameter)

    def reduce(self, cases: Cases, idx: np.ndarray, context: Context, parameter: str = "") -> float:
        """The metric on the cases ``idx`` (a resample, a subset, or all of them)."""
        if self.reduce_fn is not None:
            return float(self.reduce_fn(cases, idx, context, parameter))
        if self.mean_of is not None:  # a mean of a derived vector: derive it on the subset
            values = self.mean_of({k: v[idx] for k, v in cases.items()}, context, parameter)
        else:
            values = cases[self.resolved_column(parameter)][idx]
        defined = values[~np.isnan(values)]
        return float(defined.mean()) if defined.size else float("nan")

    def reduce_many(
        self, cases: Cases, idx: np.ndarray, context: Context, parameter: str = ""
    ) -> np.ndarray:
        """``reduce`` on each row of the ``(n_resamples, k)`` case indices ``idx``."""
        if self.reduce_many_fn is not None:
            return np.asarray(self.reduce_many_fn(cases, idx, context, parameter), np.float64)
        return np.array([self.reduce(cases, row, context, parameter) for row in idx], np.float64)


METRICS: Registry[MetricSpec] = Registry("metric")


def _add(spec: MetricSpec) -> MetricSpec:
    return METRICS.add(spec.name + ("@" if spec.parameter else ""), spec)


@dataclass(frozen=True)
class Bound:
    """A spec with its parameter, as a task names it (``sensitivity@youden``)."""

    name: str
    spec: MetricSpec
    parameter: str = ""

    @property
    def higher_is_better(self) -> bool:
        return self.spec.higher_is_better

    def columns(self, truth: Any, pred: Any, context: Context) -> Cases:
        return self.spec.columns(truth, pred, context, self.parameter)

    def reduce(self, cases: Cases, idx: np.ndarray, context: Context) -> float:
        return self.spec.reduce(cases, idx, context, self.parameter)

    def reduce_many(self, cases: Cases, idx: np.ndarray, context: Context) -> np.ndarray:
        return self.spec.reduce_many(cases, idx, context, self.parameter)

    @property
    def column(self) -> str | None:
        """The per-case column whose mean this metric is, when it is one."""
        if self.spec.column is None or self.spec.mean_of is not None:
            return None
        return self.spec.resolved_column(self.parameter)


def lookup(name: str, kind: str) -> Bound:
    """The spec of metric ``name`` for a task of ``kind`` (``family@parameter`` resolved)."""
    base, sep, parameter = name.partition("@")
    key = base + sep
    if key not in METRICS:
        raise UnknownNameError(METRICS.unknown_message(key))
    spec = METRICS.get(key)
    if kind not in spec.kinds:
        raise UnknownNameError(
            f"metric {key!r} is for {', '.join(spec.kinds)} tasks, not {kind}"
            + (
                f"; did you mean {LEGACY_NAMES[(kind, name)]!r}?"
                if (kind, name) in LEGACY_NAMES
                else ""
            )
        )
    if bool(spec.parameter) != bool(parameter):
        raise UnknownNameError(
            f"metric {key!r} "
            + (f"needs a {spec.parameter} after '@'" if spec.parameter else "takes no '@'")
        )
    return Bound(name, spec, parameter)


def check_parameter(
    bound: Bound, options: Mapping[str, Any], classes: tuple[str, ...]
) -> str | None:
    """A problem with ``bound``'s parameter for a task with these options (None: fine)."""
    kind, p = bound.spec.parameter, bound.parameter
    if kind == "point" and p not in dict(options.get("operating_points", ()) or ()):
        return f"{bound.name}: the task defines no operating point {p!r}"
    if kind == "threshold":
        try:
            value = float(p)
        except ValueError:
            return f"{bound.name}: {p!r} is not a threshold"
        if not 0.0 <= value <= 1.0:
            return f"{bound.name}: threshold {p} is outside [0, 1]"
    if kind == "group" and not options.get("group_column"):
        return f"{bound.name}: the task has no group column"
    return None


# --- per-case columns ----------------------------------------------------------------------------


def _scores(truth, pred, context, parameter) -> Cases:
    y = np.asarray(truth, np.int64)
    s = np.asarray(pred, np.float64)
    return {"y_true": y, "y_score": s}


def _brier(truth, pred, context, parameter) -> Cases:
    c = _scores(truth, pred, context, parameter)
    return {**c, "brier": (c["y_score"] - c["y_true"]) ** 2}


def _rule(rule: Any) -> Any:
    return tuple(rule) if isinstance(rule, list) else rule


def point_threshold(context: Context, point: str) -> float | None:
    """The threshold of operating point ``point``, chosen on the validation predictions."""
    if context.val is None:
        return None
    rule = dict(context.option("operating_points", ()) or ())[point]
    y_val, s_val = context.val
    return float(
        M.operating_point(np.asarray(y_val), np.asarray(s_val, np.float64), rule=_rule(rule))
    )


def _at_point(truth, pred, context, point) -> Cases:
    c = _scores(truth, pred, context, point)
    threshold = point_threshold(context, point)
    if threshold is None:  # no validation predictions: operating points are not reported
        return c
    return {**c, f"pred@{point}": (c["y_score"] >= threshold).astype(np.int64)}


def _at_threshold(truth, pred, context, threshold) -> Cases:
    c = _scores(truth, pred, context, threshold)
    # MedMNIST's getACC: a case is predicted positive when its score is above the threshold.
    correct = ((c["y_score"] > float(threshold)) == (c["y_true"] == 1)).astype(np.float64)
    return {**c, f"correct@{threshold}": correct}


def _classes(truth, pred, context, parameter) -> Cases:
    y = np.asarray(truth, np.int64)
    p = np.asarray(pred, np.float64)
    predicted = p.argmax(axis=1)
    out = {"y_true": y, "y_pred": predicted, "correct": (predicted == y).astype(np.float64)}
    out.update({f"p{j}": p[:, j] for j in range(p.shape[1])})
    return out


def _per_class(name: str, table: np.ndarray, classes: tuple[str, ...]) -> Cases:
    """``{name_<class>: (n,), name: (n,) mean over classes}`` from an ``(n, C)`` table."""
    out = {f"{name}_{c}": table[:, j] for j, c in enumerate(classes)}
    with np.errstate(all="ignore"):
        defined = ~np.isnan(table)
        counts = defined.sum(axis=1)
        sums = np.where(defined, table, 0.0).sum(axis=1)
        out[name] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return out


def _masks(truth, pred) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(truth, bool), np.asarray(pred, bool)


def _overlap(truth, pred, context, parameter) -> Cases:
    t, p = _masks(truth, pred)
    return {
        **_per_class("dice", M.dice(t, p), context.classes),
        **_per_class("iou", M.iou(t, p), context.classes),
    }


def _pixel_accuracy(truth, pred, context, parameter) -> Cases:
    t, p = _masks(truth, pred)
    out = _per_class("pixel_accuracy", M.pixel_accuracy(t, p), context.classes)
    out["pixel_error"] = 1 - out["pixel_accuracy"]
    return out


def _hd95(truth, pred, context, parameter) -> Cases:
    t, p = _masks(truth, pred)
    spacing = float(context.option("pixel_spacing_mm", 1.0))
    return _per_class("hd95", M.hd95(t, p, spacing=spacing), context.classes)


def _rand(truth, pred, context, parameter) -> Cases:
    t, p = _masks(truth, pred)
    # ISBI: the true segments are the 4-connected components of the cell interior (membrane = 0).
    scores = np.array(
        [
            M.rand_scores(
                M.membrane_segments(a[0].astype(np.float32)),
                M.membrane_segments(b[0].astype(np.float32)),
            )
            for a, b in zip(t, p, strict=True)
        ]
    ).reshape(-1, 2)
    return {"v_rand": scores[:, 0], "v_info": scores[:, 1]}


def _per_image(name: str, fn: Callable[[np.ndarray, np.ndarray], float]) -> Columns:
    def columns(truth, pred, context, parameter) -> Cases:
        return {name: np.array([fn(t, p) for t, p in zip(truth, pred, strict=True)], np.float64)}

    return columns


def _foreground(t: np.ndarray, p: np.ndarray) -> float:
    return float(M.dice((np.asarray(t) > 0)[None, None], (np.asarray(p) > 0)[None, None])[0, 0])


def _seg(truth, pred, context, parameter) -> Cases:
    seg = np.array(
        [M.seg_measure(t, p) for t, p in zip(truth, pred, strict=True)], np.float64
    ).reshape(-1, 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = seg[:, 0] / seg[:, 1]
    return {"seg_matched": seg[:, 0], "seg_objects": seg[:, 1], "seg": ratio}


# --- reductions ----------------------------------------------------------------------------------


def _auc(cases, idx, context, group) -> float:
    y, s = cases["y_true"][idx], cases["y_score"][idx]
    if group:
        y, s = y[_in_group(context, group)[idx]], s[_in_group(context, group)[idx]]
    return M.roc_auc(y, s)


def _auc_many(cases, idx, context, group) -> np.ndarray:
    keep = _in_group(context, group) if group else None
    return M.resampled_roc_auc(cases["y_true"], cases["y_score"], idx, keep=keep)


def _in_group(context: Context, group: str) -> np.ndarray:
    column = context.option("group_column")
    if context.cases is None or column not in context.cases.columns:
        raise KeyError(f"the case table has no group column {column!r}")
    return (context.cases[column] == group).to_numpy()


def _hits(label: int) -> Callable[[Cases, Context, str], np.ndarray]:
    """Among the cases of ``label``, whether the operating point predicted it right (0/1)."""

    def hits(cases: Cases, context: Context, point: str) -> np.ndarray:
        y, pred = cases["y_true"], cases[f"pred@{point}"]
        return (pred[y == label] == label).astype(np.float64)

    return hits


def _class_recall(cases: Cases, context: Context, j: int) -> np.ndarray:
    return cases["correct"][cases["y_true"] == j]


def _balanced_accuracy(cases, idx, context, parameter) -> float:
    y, correct = cases["y_true"][idx], cases["correct"][idx]
    recalls = [correct[y == j].mean() for j in range(len(context.classes)) if (y == j).any()]
    return float(np.mean(recalls)) if recalls else float("nan")


def _seg_ratio(cases, idx, context, parameter) -> float:
    # CTC SEG over a data set is a ratio of sums over images, not a mean of per-image ratios.
    objects = cases["seg_objects"][idx].sum()
    return float(cases["seg_matched"][idx].sum() / objects) if objects else float("nan")


# --- the metrics ---------------------------------------------------------------------------------

BINARY, MULTI = ("binary",), ("multiclass",)
SEGMENTATION, INSTANCES = ("multilabel-segmentation",), ("instance-segmentation",)

_add(
    MetricSpec(
        "auc",
        BINARY,
        True,
        "area under the ROC curve, 95 % CI by DeLong",
        "Hanley & McNeil 1982; DeLong et al. 1988 (interval)",
        _scores,
        DELONG,
        reduce_fn=lambda c, i, ctx, p: _auc(c, i, ctx, ""),
        reduce_many_fn=lambda c, i, ctx, p: _auc_many(c, i, ctx, ""),
    )
)
_add(
    MetricSpec(
        "auc",
        BINARY,
        True,
        "area under the ROC curve on the test cases of one group (e.g. one hospital)",
        "Hanley & McNeil 1982; DeLong et al. 1988 (interval)",
        _scores,
        DELONG,
        reduce_fn=_auc,
        reduce_many_fn=_auc_many,
        parameter="group",
    )
)
for _which, _label in (("sensitivity", 1), ("specificity", 0)):
    _add(
        MetricSpec(
            _which,
            BINARY,
            True,
            f"test {_which} at an operating point whose threshold was chosen on val",
            "Gulshan et al. 2016 (operating points chosen on a tuning set)",
            _at_point,
            MEAN,
            column="pred@{p}",
            mean_of=_hits(_label),
            parameter="point",
        )
    )
_add(
    MetricSpec(
        "accuracy",
        BINARY,
        True,
        "accuracy when a score above the threshold predicts the positive class (MedMNIST getACC)",
        "Yang et al. 2023 (MedMNIST v2 evaluator)",
        _at_threshold,
        MEAN,
        column="correct@{p}",
        parameter="threshold",
    )
)
_add(
    MetricSpec(
        "ece",
        BINARY,
        False,
        f"expected calibration error, {M.N_BINS} equal-width bins",
        "Naeini et al. 2015",
        _scores,
        STATISTIC,
        reduce_fn=lambda c, i, ctx, p: M.expected_calibration_error(
            c["y_true"][i], c["y_score"][i]
        ),
        max_resamples=500,
    )
)
_add(
    MetricSpec(
        "brier",
        BINARY,
        False,
        "Brier score (mean squared error of the probability)",
        "Brier 1950",
        _brier,
        MEAN,
        column="brier",
    )
)
_add(
    MetricSpec(
        "macro_auc",
        MULTI,
        True,
        "macro one-vs-rest AUC (MedMNIST getAUC)",
        "Hand & Till 2001; Yang et al. 2023 (MedMNIST v2 evaluator)",
        _classes,
        STATISTIC,
        reduce_fn=lambda c, i, ctx, p: M.multiclass_auc(
            c["y_true"][i], np.stack([c[f"p{j}"][i] for j in range(len(ctx.classes))], axis=1)
        ),
        reduce_many_fn=lambda c, i, ctx, p: M.resampled_multiclass_auc(
            c["y_true"], np.stack([c[f"p{j}"] for j in range(len(ctx.classes))], axis=1), i
        ),
        max_resamples=1000,
    )
)
_add(
    MetricSpec(
        "accuracy",
        MULTI,
        True,
        "argmax accuracy (MedMNIST getACC)",
        "Yang et al. 2023 (MedMNIST v2 evaluator)",
        _classes,
        MEAN,
        column="correct",
    )
)
_add(
    MetricSpec(
        "qwk",
        MULTI,
        True,
        "quadratic weighted kappa",
        "Cohen 1968; as in the Kaggle diabetic retinopathy challenge",
        _classes,
        STATISTIC,
        reduce_fn=lambda c, i, ctx, p: M.quadratic_weighted_kappa(
            c["y_true"][i], c["y_pred"][i], n_classes=len(ctx.classes)
        ),
        max_resamples=1000,
    )
)
_add(
    MetricSpec(
        "recall",
        MULTI,
        True,
        "recall per class; overall, their mean (balanced accuracy)",
        "Brodersen et al. 2010 (balanced accuracy)",
        _classes,
        NO_CI,
        reduce_fn=_balanced_accuracy,
        per_class=True,
        class_values=_class_recall,
    )
)
for _name, _columns, _hib, _text, _ref in (
    (
        "dice",
        _overlap,
        True,
        "Dice per class, mean over classes (per case, then over cases)",
        "Dice 1945",
    ),
    ("iou", _overlap, True, "Jaccard index per class, mean over classes", "Jaccard 1912"),
    (
        "pixel_accuracy",
        _pixel_accuracy,
        True,
        "fraction of pixels right per class; hides class imbalance",
        "Long et al. 2015 (FCN)",
    ),
    (
        "hd95",
        _hd95,
        False,
        "95th percentile symmetric surface distance",
        "Huttenlocher et al. 1993",
    ),
):
    _add(
        MetricSpec(
            _name,
            SEGMENTATION,
            _hib,
            _text,
            _ref,
            _columns,
            MEAN,
            column=_name,
            per_class=True,
        )
    )
_add(
    MetricSpec(
        "pixel_error",
        SEGMENTATION,
        False,
        "1 - pixel accuracy (the ISBI 2012 leaderboard's pixel error)",
        "Arganda-Carreras et al. 2015",
        _pixel_accuracy,
        MEAN,
        column="pixel_error",
    )
)
for _name, _text in (
    ("v_rand", "foreground-restricted Rand score of the segments (ISBI 2012)"),
    ("v_info", "foreground-restricted information-theoretic score of the segments (ISBI 2012)"),
):
    _add(
        MetricSpec(
            _name,
            SEGMENTATION,
            True,
            _text,
            "Arganda-Carreras et al. 2015",
            _rand,
            MEAN,
            column=_name,
        )
    )
_add(
    MetricSpec(
        "dsb_ap",
        INSTANCES,
        True,
        "DSB 2018 average precision over IoU thresholds 0.5:0.95, per image, mean over images",
        "Kaggle Data Science Bowl 2018; Caicedo et al. 2019",
        _per_image("dsb_ap", M.dsb_average_precision),
        MEAN,
        column="dsb_ap",
    )
)
_add(
    MetricSpec(
        "f1_50",
        INSTANCES,
        True,
        "object F1 at IoU 0.5, per image, mean over images",
        "Caicedo et al. 2019",
        _per_image("f1_50", lambda t, p: M.instance_f1(t, p, threshold=0.5)),
        MEAN,
        column="f1_50",
    )
)
_add(
    MetricSpec(
        "foreground_dice",
        INSTANCES,
        True,
        "Dice of all predicted objects against all true objects (foreground vs background)",
        "Dice 1945",
        _per_image("foreground_dice", _foreground),
        MEAN,
        column="foreground_dice",
        per_class=True,  # an instance task has one class: its value is the overall one
        class_values=lambda c, ctx, j: c["foreground_dice"],
    )
)
_add(
    MetricSpec(
        "seg",
        INSTANCES,
        True,
        "SEG: mean Jaccard of matched objects (IoU > 0.5), a ratio of sums over images",
        "Ulman et al. 2017 (Cell Tracking Challenge)",
        _seg,
        STATISTIC,
        reduce_fn=_seg_ratio,
        max_resamples=1000,
    )
)
