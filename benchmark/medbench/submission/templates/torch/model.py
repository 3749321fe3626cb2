"""{{name}}: a medbench submission trained by medbench's standard PyTorch trainer.

``TorchSubmission`` does the training (AdamW, cosine schedule, AMP and channels_last on GPU,
checkpoints, best-on-validation weights) and the prediction in the contract's shapes. This file
only builds a model; override ``train_transforms``, ``loss`` or ``optimizer`` to change more.
"""

from __future__ import annotations

import torch
from torch import nn

from medbench import TaskInfo, TorchSubmission


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """``(N, C, H, W)`` -> ``(N, K)`` logits: three conv blocks, global average pooling, linear."""

    def __init__(self, in_channels: int, n_outputs: int, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_block(in_channels, width),
            nn.MaxPool2d(2),
            conv_block(width, 2 * width),
            nn.MaxPool2d(2),
            conv_block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(4 * width, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class SmallUNet(nn.Module):
    """``(N, C, H, W)`` -> ``(N, K, H, W)`` logits: a three-level U-Net (H, W multiples of 4)."""

    def __init__(self, in_channels: int, n_outputs: int, width: int = 16) -> None:
        super().__init__()
        self.enc1 = conv_block(in_channels, width)
        self.enc2 = conv_block(width, 2 * width)
        self.bottom = conv_block(2 * width, 4 * width)
        self.pool = nn.MaxPool2d(2)
        self.up2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2)
        self.dec2 = conv_block(4 * width, 2 * width)
        self.up1 = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.dec1 = conv_block(2 * width, width)
        self.head = nn.Conv2d(width, n_outputs, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        b = self.bottom(self.pool(e2))
        d2 = self.dec2(torch.cat([e2, self.up2(b)], dim=1))
        d1 = self.dec1(torch.cat([e1, self.up1(d2)], dim=1))
        return self.head(d1)


class Model(TorchSubmission):
    """A small CNN for classification tasks, a small U-Net for segmentation tasks."""

    def build_model(self, task: TaskInfo) -> nn.Module:
        if task.kind in ("binary", "multiclass"):
            return SmallCNN(
                task.channels, self.num_outputs(task), width=self.option("base_width", 32)
            )
        return SmallUNet(task.channels, self.num_outputs(task), width=self.option("base_width", 16))

    # def train_transforms(self, task):
    #     import albumentations as A
    #     return A.Affine(scale=(0.9, 1.1), rotate=(-10, 10))   # keep images uint8
