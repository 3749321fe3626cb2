"""Properties every metric must have, checked over a table of all of them (in the manner of
scikit-learn's ``metrics/tests/test_common.py``): order invariance, symmetry where it holds,
bounds, the best value for a perfect prediction, the NaN-with-warning policy, keyword-only
options and the package's isolation from the rest of medbench."""

from __future__ import annotations

import ast
import inspect
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from medbench import metrics as M


@dataclass(frozen=True)
class Metric:
    """One row of the table: how to call a metric on generated data and what must hold."""

    compute: Callable[[dict], np.ndarray]
    data: Callable[[np.random.Generator], dict]
    perfect: Callable[[dict], dict]  # a prediction equal to the truth
    best: float | tuple
    low: float
    high: float
    per_case: bool = False  # returns one row per case (permuting cases permutes rows)
    symmetric: bool = False  # f(y_true, y_pred) == f(y_pred, y_true)


def _binary(rng):
    y = rng.integers(0, 2, 80)
    y[:2] = [0, 1]
    return {"y_true": y, "y_score": np.clip(0.3 * y + 0.7 * rng.random(80), 0, 1)}


def _binary_perfect(d):
    return {**d, "y_score": d["y_true"].astype(float)}


def _labels(rng, k=4):
    y = rng.integers(0, k, 80)
    y[:k] = np.arange(k)
    return {"y_true": y, "y_pred": np.clip(y + rng.integers(-1, 2, 80), 0, k - 1)}


def _labels_perfect(d):
    return {**d, "y_pred": d["y_true"].copy()}


def _multiclass(rng, k=4):
    y = rng.integers(0, k, 80)
    y[:k] = np.arange(k)
    logits = rng.normal(size=(80, k)) + np.eye(k)[y]
    return {"y_true": y, "y_score": np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)}


def _multiclass_perfect(d):
    return {**d, "y_score": np.eye(d["y_score"].shape[1])[d["y_true"]]}


def _masks(rng):
    # Dense random masks: no empty (case, class) pair, so every value is defined.
    return {
        "y_true": rng.random((6, 2, 12, 12)) < 0.5,
        "y_pred": rng.random((6, 2, 12, 12)) < 0.5,
    }


def _masks_perfect(d):
    return {**d, "y_pred": d["y_true"].copy()}


def _sensitivity_specificity(d):
    return np.array(M.sensitivity_specificity(d["y_true"], d["y_score"] >= 0.5))


METRICS: dict[str, Metric] = {
    "roc_auc": Metric(lambda d: M.roc_auc(**d), _binary, _binary_perfect, 1.0, 0, 1),
    "delong_ci": Metric(
        lambda d: np.array(M.delong_ci(**d)), _binary, _binary_perfect, (1.0, 1.0), 0, 1
    ),
    "brier_score": Metric(lambda d: M.brier_score(**d), _binary, _binary_perfect, 0.0, 0, 1),
    "expected_calibration_error": Metric(
        lambda d: M.expected_calibration_error(**d), _binary, _binary_perfect, 0.0, 0, 1
    ),
    "sensitivity_specificity": Metric(
        _sensitivity_specificity, _binary, _binary_perfect, (1.0, 1.0), 0, 1
    ),
    "accuracy": Metric(
        lambda d: M.accuracy(**d), _labels, _labels_perfect, 1.0, 0, 1, symmetric=True
    ),
    "per_class_recall": Metric(
        lambda d: M.per_class_recall(**d, n_classes=4), _labels, _labels_perfect, (1.0,) * 4, 0, 1
    ),
    "quadratic_weighted_kappa": Metric(
        lambda d: M.quadratic_weighted_kappa(**d, n_classes=4),
        _labels,
        _labels_perfect,
        1.0,
        -1,
        1,
        symmetric=True,
    ),
    "multiclass_auc": Metric(
        lambda d: M.multiclass_auc(**d), _multiclass, _multiclass_perfect, 1.0, 0, 1
    ),
    "dice": Metric(
        lambda d: M.dice(**d), _masks, _masks_perfect, 1.0, 0, 1, per_case=True, symmetric=True
    ),
    "iou": Metric(
        lambda d: M.iou(**d), _masks, _masks_perfect, 1.0, 0, 1, per_case=True, symmetric=True
    ),
    "pixel_accuracy": Metric(
        lambda d: M.pixel_accuracy(**d),
        _masks,
        _masks_perfect,
        1.0,
        0,
        1,
        per_case=True,
        symmetric=True,
    ),
    "hd95": Metric(
        lambda d: M.hd95(**d, spacing=(1.0, 0.5)),
        _masks,
        _masks_perfect,
        0.0,
        0,
        math.inf,
        per_case=True,
        symmetric=True,
    ),
}


def _permuted(data: dict, order: np.ndarray) -> dict:
    return {k: v[order] for k, v in data.items()}


@pytest.mark.parametrize("name", sorted(METRICS))
def test_order_invariance(name):
    metric = METRICS[name]
    rng = np.random.default_rng(0)
    data = metric.data(rng)
    order = rng.permutation(len(data["y_true"]))
    before, after = metric.compute(data), metric.compute(_permuted(data, order))
    if metric.per_case:
        np.testing.assert_allclose(after, before[order], rtol=1e-12)
    else:
        np.testing.assert_allclose(after, before, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(n for n, m in METRICS.items() if m.symmetric))
def test_symmetry(name):
    metric = METRICS[name]
    data = metric.data(np.random.default_rng(1))
    swapped = {"y_true": data["y_pred"], "y_pred": data["y_true"]}
    np.testing.assert_allclose(metric.compute(swapped), metric.compute(data), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(METRICS))
@pytest.mark.parametrize("seed", range(3))
def test_bounds(name, seed):
    metric = METRICS[name]
    values = np.atleast_1d(metric.compute(metric.data(np.random.default_rng(seed))))
    assert not np.isnan(values).any()
    assert np.all(values >= metric.low) and np.all(values <= metric.high)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_perfect_prediction_gives_the_best_value(name):
    metric = METRICS[name]
    data = metric.data(np.random.default_rng(2))
    best = np.broadcast_to(np.asarray(metric.best, float), np.shape(metric.compute(data)))
    np.testing.assert_allclose(metric.compute(metric.perfect(data)), best, atol=1e-12)
    # ... and the generated (imperfect) prediction is strictly worse somewhere.
    assert not np.allclose(metric.compute(data), best)


# --- instance metrics: per image, invariant to object relabelling and to rotating both images ---


def _instances(rng):
    truth = np.zeros((24, 24), np.int64)
    for k in range(1, 9):
        y, x = rng.integers(0, 20, size=2)
        truth[y : y + rng.integers(2, 6), x : x + rng.integers(2, 6)] = k
    pred = np.where(rng.random(truth.shape) < 0.1, 0, np.roll(truth, 1, axis=1))
    return truth, pred


INSTANCE_METRICS: dict[str, tuple[Callable, float, bool]] = {
    # name: (function returning a float, best value, symmetric)
    "dsb_average_precision": (M.dsb_average_precision, 1.0, True),
    "instance_f1": (M.instance_f1, 1.0, True),
    "instance_f1@0.2": (lambda t, p: M.instance_f1(t, p, threshold=0.2), 1.0, True),
    "seg": (lambda t, p: M.seg_measure(t, p)[0] / M.seg_measure(t, p)[1], 1.0, False),
    "v_rand": (lambda t, p: M.rand_scores(t, p)[0], 1.0, False),
    "v_info": (lambda t, p: M.rand_scores(t, p)[1], 1.0, False),
}


@pytest.mark.parametrize("name", sorted(INSTANCE_METRICS))
def test_instance_metric_properties(name):
    fn, best, symmetric = INSTANCE_METRICS[name]
    truth, pred = _instances(np.random.default_rng(3))
    value = fn(truth, pred)
    assert 0 <= value < best  # bounded, and the imperfect prediction is worse than perfect
    assert fn(truth, truth) == pytest.approx(best)
    relabel = np.concatenate(
        [[0], np.random.default_rng(4).permutation(np.arange(1, pred.max() + 1)) + 9]
    )
    assert fn(truth, relabel[pred]) == pytest.approx(value, rel=1e-12)
    assert fn(np.rot90(truth), np.rot90(pred)) == pytest.approx(value, rel=1e-12)
    if symmetric:
        assert fn(pred, truth) == pytest.approx(value, rel=1e-12)


# --- NaN policy: every undefined value is NaN with a RuntimeWarning ------------------------------

EMPTY_MASKS = np.zeros((1, 1, 4, 4), bool)
NO_LABELS = np.zeros((4, 4), np.int64)

UNDEFINED: dict[str, Callable[[], object]] = {
    "roc_auc": lambda: M.roc_auc([1, 1], [0.1, 0.2]),
    "delong_ci": lambda: M.delong_ci([0, 0], [0.1, 0.2]),
    "delong_test": lambda: M.delong_test([0, 0], [0.1, 0.2], [0.2, 0.1]),
    "operating_point": lambda: M.operating_point([1, 1], [0.1, 0.2], rule="youden"),
    "sensitivity_specificity": lambda: M.sensitivity_specificity([0, 0], [0, 1])[0],
    "per_class_recall": lambda: M.per_class_recall([0, 0], [0, 1], n_classes=2)[1],
    "quadratic_weighted_kappa": lambda: M.quadratic_weighted_kappa([1, 1], [1, 1], n_classes=3),
    "multiclass_auc": lambda: M.multiclass_auc([0, 0], [[0.5, 0.5], [0.6, 0.4]]),
    "dice": lambda: M.dice(EMPTY_MASKS, EMPTY_MASKS),
    "iou": lambda: M.iou(EMPTY_MASKS, EMPTY_MASKS),
    "hd95": lambda: M.hd95(EMPTY_MASKS, EMPTY_MASKS),
    "instance_f1": lambda: M.instance_f1(NO_LABELS, NO_LABELS),
    "rand_scores": lambda: M.rand_scores(NO_LABELS, NO_LABELS),
    "bootstrap_ci": lambda: M.bootstrap_ci([np.nan, 1.0]),
    "paired_bootstrap": lambda: M.paired_bootstrap([np.nan, 1.0], [1.0, 2.0]),
}


@pytest.mark.parametrize("name", sorted(UNDEFINED))
def test_undefined_values_are_nan_with_a_warning(name):
    with pytest.warns(RuntimeWarning, match="undefined|needs at least|at least 2"):
        value = UNDEFINED[name]()
    assert np.isnan(np.asarray(value, dtype=float)).all()


def test_defined_values_do_not_warn():
    data = _masks(np.random.default_rng(5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        M.dice(**data)
        M.hd95(**data)
        M.roc_auc(**_binary(np.random.default_rng(5)))
        M.bootstrap_ci(np.arange(10.0))


# --- the interface ------------------------------------------------------------------------------

EXPECTED_API = {
    "roc_auc", "delong_ci", "delong_test", "operating_point", "sensitivity_specificity",
    "accuracy", "per_class_recall", "quadratic_weighted_kappa", "multiclass_auc",
    "expected_calibration_error", "brier_score", "dice", "iou", "pixel_accuracy", "hd95",
    "dsb_average_precision", "instance_f1", "seg_measure", "rand_scores", "membrane_segments",
    "label_interior", "bootstrap_ci", "paired_bootstrap", "PairedResult", "holm", "rank_intervals",
    "roc_curve", "calibration_bins", "N_BINS", "bootstrap_statistic", "resample_indices",
    "UndefinedMetricWarning", "resampled_roc_auc", "resampled_multiclass_auc", "case_counts",
}  # fmt: skip

# Positional parameters are the data; everything else must be keyword-only.
DATA_PARAMETERS = {
    "y_true", "y_score", "y_pred", "y_score_a", "y_score_b", "per_case", "per_case_a",
    "per_case_b", "p_values", "per_case_matrix", "prob", "mask", "statistic", "n_cases",
    "idx",
}  # fmt: skip


def test_public_api_is_exactly_the_documented_names():
    assert set(M.__all__) == EXPECTED_API
    assert len(M.__all__) == len(EXPECTED_API)
    assert all(hasattr(M, name) for name in M.__all__)


@pytest.mark.parametrize(
    "name", sorted(EXPECTED_API - {"PairedResult", "N_BINS", "UndefinedMetricWarning"})
)
def test_options_are_keyword_only_and_documented(name):
    fn = getattr(M, name)
    for parameter in inspect.signature(fn).parameters.values():
        if parameter.name not in DATA_PARAMETERS:
            assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, (name, parameter.name)
    assert fn.__doc__ and len(fn.__doc__.strip()) > 40


def test_metrics_import_nothing_else_from_medbench():
    package = Path(M.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                if module.startswith("medbench"):
                    assert module.startswith("medbench.metrics"), (path.name, module)
