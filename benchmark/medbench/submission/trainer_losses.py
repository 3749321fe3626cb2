"""Default losses of the standard trainer, one per task kind."""

from __future__ import annotations

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


def default_loss(kind: str) -> nn.Module:
    """Cross-entropy for binary (two logits) and multiclass; BCE + soft Dice for segmentation
    (multi-label channels, or the foreground + boundary channels of instance tasks)."""
    if kind in ("binary", "multiclass"):
        return CrossEntropy()
    if kind in ("multilabel-segmentation", "instance-segmentation"):
        return BCEDiceLoss()
    raise ValueError(f"no default loss for task kind {kind!r}")
