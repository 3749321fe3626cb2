"""Image classifiers from timm, trained from scratch by medbench's standard trainer.

One entry for every classification task: ``[train]`` ``backbone`` picks the network (ResNet-18,
ResNet-50, DenseNet-121 as in CheXNet, Inception-v3 as in Gulshan et al. 2016), ``image_size``
resizes the inputs inside the model (so training and prediction see the same size),
``class_weight`` re-weights the cross-entropy against class imbalance and ``pretrained = true``
starts from timm's ImageNet weights when they can be fetched.
"""

from __future__ import annotations

import textwrap
from typing import Any

import albumentations as A
import cv2
import numpy as np
import timm
import torch
from torch import nn
from torch.nn import functional as F

from medbench import Dataset, RunContext, SubmissionError, TaskInfo, TorchSubmission

#: Supported backbones and the smallest input side (px) each accepts: DenseNet-121 pools its
#: features down to nothing below 32 px and Inception-v3's stem needs 75 px.
BACKBONES: dict[str, int] = {"resnet18": 1, "resnet50": 1, "densenet121": 32, "inception_v3": 75}
CLASS_WEIGHTS = ("none", "sqrt", "balanced")

FUNDUS = ("messidor2-referable", "messidor2-grading", "retinamnist")
CHEST = ("jsrt-nodule", "tb-cxr")


class Resize(nn.Module):
    """Bilinear resize of ``(N, C, H, W)`` inputs to ``(N, C, size, size)`` (anti-aliased when shrinking)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] == (self.size, self.size):
            return x
        shrink = min(x.shape[-2:]) > self.size
        return F.interpolate(
            x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=shrink
        )


def class_weights(labels: np.ndarray, n_classes: int, mode: str) -> torch.Tensor | None:
    """Cross-entropy weights ``(K,)`` with mean 1 over the classes present: ``balanced`` =
    inverse frequency, ``sqrt`` = its square root (milder), ``none`` = None. Absent classes get 0."""
    if mode == "none":
        return None
    counts = np.bincount(np.asarray(labels, np.int64).reshape(-1), minlength=n_classes).astype(
        np.float64
    )
    present = counts > 0
    if not present.any():
        return None
    weights = np.zeros(n_classes)
    weights[present] = 1.0 / counts[present]
    if mode == "sqrt":
        weights = np.sqrt(weights)
    weights[present] /= weights[present].mean()
    return torch.tensor(weights, dtype=torch.float32)


class CNN(TorchSubmission):
    """A timm backbone with a ``K``-way head for binary and multiclass tasks."""

    _train_labels: np.ndarray | None = None

    # --- options ---------------------------------------------------------------------------------

    def backbone(self) -> str:
        name = self.option("backbone", "resnet18")
        if name not in BACKBONES:
            raise SubmissionError(
                f"[train] backbone must be one of {sorted(BACKBONES)}; got {name!r}"
            )
        return name

    def input_side(self, task: TaskInfo) -> int:
        """The side the backbone sees: ``[train]`` ``image_size`` or the task's own size."""
        if self.config.image_size is not None:
            return self.config.image_size
        if task.input_size is None:
            raise SubmissionError(
                f"cnn needs fixed-size images; {task.name!r} has native sizes (set image_size)"
            )
        return min(task.input_size)

    # --- hooks of the standard trainer -----------------------------------------------------------

    def fit(self, task: TaskInfo, train: Dataset, val: Dataset, ctx: RunContext) -> None:
        if task.kind not in ("binary", "multiclass"):
            raise SubmissionError(f"cnn classifies images; task {task.name!r} is {task.kind}")
        self._train_labels = np.asarray(train.targets)  # for class weights in loss()
        super().fit(task, train, val, ctx)

    def build_model(self, task: TaskInfo) -> nn.Module:
        name = self.backbone()
        side = self.input_side(task)
        if side < BACKBONES[name]:
            raise SubmissionError(
                f"backbone {name} needs inputs of at least {BACKBONES[name]} px; {task.name!r} "
                f"would give it {side} px: set [train.{task.name}] image_size = {BACKBONES[name]} or more"
            )
        kwargs = {
            "num_classes": self.num_outputs(task),
            "in_chans": task.channels,
            "drop_rate": float(self.option("drop_rate", 0.0)),
        }
        if self.option("pretrained", False):
            model = _pretrained(name, kwargs)
        else:
            model = timm.create_model(name, pretrained=False, **kwargs)
        if self.config.image_size is None:
            return model
        return nn.Sequential(Resize(self.config.image_size), model)

    def loss(self, task: TaskInfo) -> nn.Module:
        mode = self.option("class_weight", "none")
        if mode not in CLASS_WEIGHTS:
            raise SubmissionError(
                f"[train] class_weight must be one of {list(CLASS_WEIGHTS)}; got {mode!r}"
            )
        labels = self._train_labels if self._train_labels is not None else np.zeros(0, np.int64)
        return nn.CrossEntropyLoss(weight=class_weights(labels, task.n_classes, mode))

    def train_transforms(self, task: TaskInfo) -> Any:
        if not self.option("augment", True):
            return None
        if task.name in FUNDUS:
            # A fundus photograph has no fixed handedness (left and right eyes are mirror images)
            # and cameras differ in orientation and exposure.
            return A.Compose(
                [
                    A.HorizontalFlip(p=0.5),
                    A.VerticalFlip(p=0.5),
                    A.Affine(
                        rotate=(-20, 20),
                        scale=(0.95, 1.05),
                        border_mode=cv2.BORDER_CONSTANT,
                        fill=0,
                        p=0.7,
                    ),
                    A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.7),
                ]
            )
        if task.name in CHEST:
            # Chest anatomy is lateralised (heart on the image's right): no flips, small
            # shifts, zooms and tilts of the patient, exposure changes.
            return A.Compose(
                [
                    A.Affine(
                        scale=(0.9, 1.1),
                        translate_percent=(-0.05, 0.05),
                        rotate=(-7, 7),
                        border_mode=cv2.BORDER_CONSTANT,
                        fill=0,
                        p=0.7,
                    ),
                    A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=0.5),
                ]
            )
        if task.name == "toy-lesions":
            # Synthetic texture with a blob anywhere: every flip and right angle is valid.
            return A.SquareSymmetry()
        return None


def _pretrained(name: str, kwargs: dict[str, Any]) -> nn.Module:
    """timm's ImageNet weights for ``name`` (first conv adapted to the channels, new head), or a
    SubmissionError saying they could not be fetched."""
    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except Exception as exc:  # hub, network and cache errors come in many types
        reason = textwrap.shorten(str(exc), 240, placeholder=" ...")
        raise SubmissionError(
            f"pretrained = true: ImageNet weights for {name} could not be fetched through timm "
            f"({type(exc).__name__}: {reason}). The reference results of this submission are "
            "trained from scratch (pretrained = false); to fine-tune, run where huggingface.co is "
            "reachable or put the weights in the Hugging Face cache (HF_HOME) first."
        ) from exc
