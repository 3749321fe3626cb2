"""Bar et al. 2015 on medbench's tasks: frozen ImageNet features + a linear classifier.

Bar et al. took DeCAF's L5, L6 and L7 (ImageNet AlexNet) as features of chest radiographs, fed
an SVM and fused the best layer with low-level features (GIST, LBP). Here the network is the
ImageNet EfficientNet-Lite0 of ``medbench.pretrained`` (offline weights), frozen; its last two
stages and its head, global-average-pooled, play L5/L6/L7 (192, 320 and 1280 values). Each
layer's features are standardised and classified by an L2 logistic regression (probabilities,
multinomial for several classes); "fused" variants concatenate a layer with the LBP histograms
of ``medbench.features``. ``[train] features = "best"`` tries every layer and fusion with every
``C`` of ``c_grid`` and keeps the best on validation (never test); a fixed choice is one variant.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch.nn import functional as F

from medbench import Dataset, RunContext, Submission, SubmissionError, TaskInfo, validation_score
from medbench.features import lbp_histograms
from medbench.pretrained import lite, stage_features, weights_info
from medbench.submission.transforms import normalise

LAYERS = ("l5", "l6", "l7")
VARIANTS = (*LAYERS, *(f"{layer}+lbp" for layer in LAYERS))


class DeepFeatures(Submission):
    def __init__(self) -> None:
        self.model: Pipeline | None = None
        self.variant = ""

    def fit(self, task: TaskInfo, train: Dataset, val: Dataset, ctx: RunContext) -> None:
        if task.kind not in ("binary", "multiclass"):
            raise SubmissionError(f"deep-features classifies images; {task.name!r} is {task.kind}")
        choice = ctx.option("features", "best")
        if choice not in (*VARIANTS, "best"):
            raise SubmissionError(
                f"[train] features must be one of {[*VARIANTS, 'best']}; got {choice!r}"
            )
        for key, value in weights_info(ctx.option("backbone", "efficientnet_lite0")).items():
            ctx.note(key, value)
        y, y_val = np.asarray(train.targets).reshape(-1), np.asarray(val.targets).reshape(-1)
        x, x_val = self.features(task, train, ctx), self.features(task, val, ctx)
        best: tuple[float, str, float, Pipeline] | None = None
        for variant in VARIANTS if choice == "best" else (choice,):
            for c in sorted(float(c) for c in ctx.option("c_grid", [0.01, 0.1, 1.0])):
                model = _classifier(c, ctx.seed).fit(_pick(x, variant), y)
                proba = _proba(task, model, _pick(x_val, variant))
                score = validation_score(task, y_val, proba[:, 1] if task.kind == "binary" else proba)
                ctx.logger.info("deep-features %s: %s C=%g val %.4f", task.name, variant, c, score)
                value = score if math.isfinite(score) else -math.inf
                if best is None or value > best[0]:  # ties keep the simpler, earlier variant
                    best = (value, variant, c, model)
        assert best is not None
        _, self.variant, c, self.model = best
        ctx.note("features", f"{self.variant}, C={c:g} (val {task.primary_metric} {best[0]:.4f})")

    def predict(self, task: TaskInfo, test: Dataset, ctx: RunContext) -> np.ndarray:
        if self.model is None:
            raise SubmissionError(f"deep-features: predict on {task.name!r} before fit")
        proba = _proba(task, self.model, _pick(self.features(task, test, ctx), self.variant))
        return proba[:, 1].copy() if task.kind == "binary" else proba

    def features(self, task: TaskInfo, data: Dataset, ctx: RunContext) -> dict[str, np.ndarray]:
        """``{"l5", "l6", "l7": (n, d), "lbp": (n, d)}`` of ``data`` (the network frozen, eval)."""
        net = lite(
            ctx.option("backbone", "efficientnet_lite0"), num_classes=1, in_chans=task.channels
        )
        net.eval()
        side, batch = int(ctx.option("image_size", 224)), int(ctx.option("batch_size", 32))
        layers: list[list[np.ndarray]] = [[], [], []]
        with torch.no_grad():
            for start in range(0, len(data), batch):
                images = np.stack(
                    [
                        np.asarray(data.images[i])
                        for i in range(start, min(len(data), start + batch))
                    ]
                )
                x = normalise(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())
                x = F.interpolate(
                    x, size=(side, side), mode="bilinear", antialias=True, align_corners=False
                )
                for k, f in enumerate(stage_features(net, x)):
                    layers[k].append(f.numpy())
        out = {name: np.concatenate(parts) for name, parts in zip(LAYERS, layers, strict=True)}
        out["lbp"] = lbp_histograms(data.images)
        return out


def _pick(features: dict[str, np.ndarray], variant: str) -> np.ndarray:
    layer, _, fused = variant.partition("+")
    parts = [features[layer]] + ([features["lbp"]] if fused else [])
    return np.concatenate(parts, axis=1).astype(np.float64)


def _classifier(c: float, seed: int) -> Pipeline:
    return make_pipeline(
        StandardScaler(), LogisticRegression(C=c, max_iter=5000, random_state=seed)
    )


def _proba(task: TaskInfo, model: Pipeline, x: np.ndarray) -> np.ndarray:
    """``(n, K)`` probabilities over all K classes (a class absent from train gets 0)."""
    out = np.zeros((len(x), task.n_classes), np.float64)
    if len(x):
        out[:, model.classes_.astype(np.int64)] = model.predict_proba(x)
    return out / np.maximum(out.sum(axis=1, keepdims=True), 1e-12)
