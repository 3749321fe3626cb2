"""The low-level baseline of Bar et al. 2015: local binary pattern histograms + an RBF SVM.

Features: ``medbench.features.lbp_histograms`` (multi-scale uniform LBP, whole image and 2x2 and
4x4 cells, each histogram summing to 1), with the scales, grids and size of ``[train]``.

Classifier: zero-mean unit-variance scaling, then ``SVC(kernel="rbf", class_weight="balanced")``
with Platt-scaled probabilities from 5-fold cross-validation on the training split (what
``SVC(probability=True)`` did inside libsvm; that flag is deprecated since scikit-learn 1.9, so
the calibration is scikit-learn's ``CalibratedClassifierCV(..., ensemble=False)``). ``C`` is chosen
from a small grid by the task's primary metric on the validation split; the model fitted on the
training split with that ``C`` is the one that predicts (no refit on train + val: the runner
chooses operating points on validation predictions, which must come from a model that has not
seen those cases).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from medbench import Dataset, RunContext, Submission, SubmissionError, TaskInfo, validation_score
from medbench.features import lbp_histograms

DEFAULTS: dict[str, Any] = {
    "scales": [[8, 1], [16, 2]],  # (points P, radius R) of each LBP operator
    "grids": [1, 2, 4],  # histogram cells per side: whole image, 2x2, 4x4
    "max_side": 256,
    "c_grid": [0.1, 1.0, 10.0, 100.0],
    "n_jobs": 0,  # feature threads; 0 = one per core
}


def featurise(images: Any, options: dict[str, Any]) -> np.ndarray:
    """``(n, d)`` LBP features of ``images`` with the options of a run's ``[train]``."""
    return lbp_histograms(
        images,
        scales=options["scales"],
        grids=options["grids"],
        max_side=options["max_side"],
        n_jobs=options["n_jobs"],
    )


def selection_score(task: TaskInfo, y: np.ndarray, proba: np.ndarray) -> float:
    """The task's primary metric of validation probabilities ``(n, K)``, as medbench scores it
    (NaN where undefined)."""
    scores = proba[:, 1] if task.kind == "binary" else proba
    return float(validation_score(task, y, scores))


def probability_svm(c: float, y: np.ndarray, seed: int) -> CalibratedClassifierCV:
    """RBF SVC (balanced class weights) with sigmoid (Platt) probabilities fitted on out-of-fold
    decision values: up to 5 stratified folds, as many as the rarest class of ``y`` allows (>= 2)."""
    counts = np.bincount(y)
    folds = int(min(5, counts[counts > 0].min()))
    return CalibratedClassifierCV(
        SVC(C=c, kernel="rbf", gamma="scale", class_weight="balanced"),
        method="sigmoid",
        cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
        ensemble=False,
    )


class LBPSVM(Submission):
    """LBP histograms, StandardScaler, RBF SVC with Platt probabilities; C chosen on validation."""

    def __init__(self) -> None:
        self.model: Pipeline | None = None
        self.constant: np.ndarray | None = None  # class priors, when train holds one class
        self.chosen: dict[str, Any] = {}

    def options(self, ctx: RunContext) -> dict[str, Any]:
        options = {key: ctx.option(key, default) for key, default in DEFAULTS.items()}
        bad = [s for s in options["scales"] if len(s) != 2 or int(s[0]) < 1 or float(s[1]) <= 0]
        grids, c_grid = options["grids"], options["c_grid"]
        if bad or not grids or min(grids) < 1 or not c_grid or min(c_grid) <= 0:
            raise SubmissionError(
                "lbp-svm [train]: scales must be [points, radius] pairs, grids positive integers "
                f"and c_grid positive numbers; got scales={options['scales']}, grids={grids}, "
                f"c_grid={c_grid}"
            )
        return options

    def features(self, images: Any, ctx: RunContext | None = None) -> np.ndarray:
        """``(n, d)`` LBP features of ``images`` with the run's options (defaults without ``ctx``)."""
        return featurise(images, DEFAULTS if ctx is None else self.options(ctx))


    def fit(self, task: TaskInfo, train: Dataset, val: Dataset, ctx: RunContext) -> None:
        if task.kind not in ("binary", "multiclass"):
            raise SubmissionError(f"lbp-svm classifies images; task {task.name!r} is {task.kind}")
        options = self.options(ctx)
        y = np.asarray(train.targets, np.int64).reshape(-1)
        x = featurise(train.images, options)
        self.model, self.constant = None, None
        # Platt scaling holds cases out, so a class needs two training cases to be calibrated;
        # rarer classes are left out of the SVM and get probability 0.
        counts = np.bincount(y, minlength=task.n_classes)
        keep = counts[y] >= 2
        if not keep.all():
            ctx.logger.warning(
                "lbp-svm %s: classes %s have fewer than 2 training cases; they get probability 0",
                task.name,
                np.flatnonzero((counts > 0) & (counts < 2)).tolist(),
            )
        if len(np.unique(y[keep])) < 2:
            # An SVM needs two classes; the training priors are all that can be learnt.
            self.constant = counts / max(len(y), 1)
            return
        x, y = x[keep], y[keep]
        y_val = np.asarray(val.targets, np.int64).reshape(-1) if len(val) else np.zeros(0, np.int64)
        x_val = featurise(val.images, options) if len(val) else None
        best: tuple[float, Pipeline, float] | None = None
        for c in sorted(float(c) for c in options["c_grid"]):
            model = make_pipeline(StandardScaler(), probability_svm(c, y, ctx.seed)).fit(x, y)
            score = (
                math.nan
                if x_val is None
                else selection_score(task, y_val, self._proba(task, model, x_val))
            )
            ctx.logger.info(
                "lbp-svm %s: C=%g val %s %.4f", task.name, c, task.primary_metric, score
            )
            # Ties (and an undefined metric) keep the smaller, more regularised C.
            value = score if math.isfinite(score) else -math.inf
            if best is None or value > best[0]:
                best = (value, model, c)
        assert best is not None  # c_grid is not empty
        self.model = best[1]
        self.chosen = {"C": best[2], "val_score": best[0], "n_features": x.shape[1]}
        ctx.logger.info("lbp-svm %s: chose C=%g (%d features)", task.name, best[2], x.shape[1])

    def predict(self, task: TaskInfo, test: Dataset, ctx: RunContext) -> np.ndarray:
        if self.model is None and self.constant is None:
            raise SubmissionError(f"lbp-svm: predict on {task.name!r} before fit")
        if self.constant is not None:
            proba = np.tile(self.constant, (len(test), 1))
        else:
            proba = self._proba(task, self.model, featurise(test.images, self.options(ctx)))
        return proba[:, 1].copy() if task.kind == "binary" else proba

    @staticmethod
    def _proba(task: TaskInfo, model: Pipeline, x: np.ndarray) -> np.ndarray:
        """``(n, K)`` probabilities over all K classes; a class absent from train gets 0."""
        out = np.zeros((len(x), task.n_classes), np.float64)
        if len(x):
            out[:, model.classes_.astype(np.int64)] = model.predict_proba(x)
        return out / np.maximum(out.sum(axis=1, keepdims=True), 1e-12)
