"""Losses of the standard trainer: one default per task kind, and ``[train] loss`` for segmentation.

Segmentation outputs are independent sigmoid channels (structures may overlap: JSRT's clavicles
lie over the lungs), so every loss here is per channel:

- ``"bce+dice"`` (default): :class:`BCEDiceLoss`.
- ``"dice"``: :func:`soft_dice_loss` alone (Novikov et al. 2018's loss "based on the Dice
  coefficient", the negative Dice up to a constant).
- ``"ce"``: pixel-wise binary cross-entropy.
- ``"weighted-ce"``: :class:`WeightedBCELoss`, each channel's foreground and background
  weighted by the inverse of their frequency in the training masks
  (:func:`class_frequencies`), against the imbalance of small structures.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, *, eps: float = 1.0) -> torch.Tensor:
    """``1 -`` soft Dice of ``sigmoid(logits)``, per channel over the whole batch, mean over channels.

    Summing over the batch (not per image) keeps the loss defined when an image lacks a
    structure; ``eps`` smooths tiny structures. Shapes: ``(N, C, H, W)`` both.
    """
    probs = torch.sigmoid(logits)
    dims = (0, *range(2, logits.ndim))
    overlap = (probs * target).sum(dims)
    total = probs.sum(dims) + target.sum(dims)
    return 1.0 - ((2.0 * overlap + eps) / (total + eps)).mean()


class BCEDiceLoss(nn.Module):
    """Binary cross-entropy with logits + soft Dice, for independent (multi-label) channels.

    ``logits`` ``(N, C, H, W)`` float; ``target`` ``(N, C, H, W)`` in {0, 1} (any dtype).
    """

    def __init__(self, bce_weight: float = 1.0, dice_weight: float = 1.0) -> None:
        super().__init__()
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        target = target.to(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, target)
        return self.bce_weight * bce + self.dice_weight * soft_dice_loss(logits, target)


class CrossEntropy(nn.CrossEntropyLoss):
    """Cross-entropy over class logits ``(N, K)`` with ``(N,)`` int64 targets, computed in float32."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return super().forward(logits.float(), target)


class BCELoss(nn.Module):
    """Pixel-wise binary cross-entropy with logits, mean over pixels and channels (float32)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))


class DiceLoss(nn.Module):
    """:func:`soft_dice_loss` as a module (float32)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        return soft_dice_loss(logits, target.to(logits.dtype))


class WeightedBCELoss(nn.Module):
    """Binary cross-entropy with inverse-frequency weights per channel and side.

    For channel ``c`` with foreground frequency ``f_c`` in the training masks, a foreground
    pixel weighs ``1 / (2 f_c)`` and a background pixel ``1 / (2 (1 - f_c))``: over the training
    masks the mean weight is 1 and each channel's foreground and background weigh the same in
    total, so a structure covering 2 % of the image counts as much as its background (Novikov
    et al. 2018 weight each class by the inverse of its frequency; with overlapping sigmoid
    channels the classes of a channel are its foreground and its background). ``frequencies``:
    ``(C,)`` values in (0, 1).
    """

    def __init__(self, frequencies: torch.Tensor | list[float]) -> None:
        super().__init__()
        f = torch.as_tensor(frequencies, dtype=torch.float32)
        if f.ndim != 1 or not bool(((f > 0) & (f < 1)).all()):
            raise ValueError(f"foreground frequencies must be a vector in (0, 1); got {f.tolist()}")
        self.register_buffer("positive", 1.0 / (2.0 * f))
        self.register_buffer("negative", 1.0 / (2.0 * (1.0 - f)))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        target = target.to(logits.dtype)
        shape = (1, -1) + (1,) * (logits.ndim - 2)
        weight = target * self.positive.view(shape) + (1 - target) * self.negative.view(shape)
        return F.binary_cross_entropy_with_logits(logits, target, weight=weight)


def class_frequencies(masks: Iterable[np.ndarray], channels: int) -> np.ndarray:
    """Foreground frequency of each channel over all pixels of ``(C, H, W)`` masks (any size),
    clipped to ``[1e-4, 1 - 1e-4]`` so an absent structure gives a finite weight."""
    foreground = np.zeros(channels, np.float64)
    pixels = 0
    for mask in masks:
        m = np.asarray(mask)
        if m.ndim != 3 or m.shape[0] != channels:
            raise ValueError(f"masks must be ({channels}, H, W); got {m.shape}")
        foreground += (m > 0).reshape(channels, -1).sum(axis=1)
        pixels += m.shape[1] * m.shape[2]
    if pixels == 0:
        raise ValueError("no training masks to count class frequencies from")
    return np.clip(foreground / pixels, 1e-4, 1 - 1e-4)


def segmentation_loss(name: str, frequencies: np.ndarray | None = None) -> nn.Module:
    """The ``[train] loss`` called ``name`` (:data:`~medbench.submission.choices.LOSSES`);
    ``"weighted-ce"`` needs the training masks' ``frequencies``."""
    if name == "bce+dice":
        return BCEDiceLoss()
    if name == "dice":
        return DiceLoss()
    if name == "ce":
        return BCELoss()
    if name == "weighted-ce":
        if frequencies is None:
            raise ValueError("weighted-ce needs the foreground frequencies of the training masks")
        return WeightedBCELoss(frequencies.tolist())
    raise ValueError(f"unknown segmentation loss {name!r}")


def default_loss(kind: str) -> nn.Module:
    """Cross-entropy for binary (two logits) and multiclass; BCE + soft Dice for segmentation
    (multi-label channels, or the foreground + boundary channels of instance tasks)."""
    if kind in ("binary", "multiclass"):
        return CrossEntropy()
    if kind in ("multilabel-segmentation", "instance-segmentation"):
        return BCEDiceLoss()
    raise ValueError(f"no default loss for task kind {kind!r}")
