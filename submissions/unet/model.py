"""U-Net (Ronneberger, Fischer & Brox, MICCAI 2015), trained from scratch by medbench's trainer.

Four down-sampling levels; at each level two 3x3 convolutions with BatchNorm and ReLU; 2x2 max
pooling down, 2x2 transposed convolutions up, skip connections by concatenation, a 1x1 head.
Unlike the paper the convolutions are padded ("same"), so the output has the input's size and
no overlap-tile inference is needed; BatchNorm (which postdates the paper) replaces its careful
initialisation.
"""

from __future__ import annotations

import albumentations as A
import cv2
import torch
from torch import nn

from medbench import TaskInfo, TorchSubmission


def double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class UNetModel(nn.Module):
    """``(N, in_channels, H, W)`` -> ``(N, out_channels, H, W)`` logits; H, W multiples of ``2**depth``."""

    def __init__(
        self, in_channels: int, out_channels: int, *, base_width: int = 32, depth: int = 4
    ) -> None:
        super().__init__()
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([double_conv(in_channels, widths[0])])
        self.down.extend(double_conv(widths[i], widths[i + 1]) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
            for i in reversed(range(depth))
        )
        self.merge = nn.ModuleList(
            double_conv(2 * widths[i], widths[i]) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        skips.pop()  # the bottleneck is x itself
        for up, merge in zip(self.up, self.merge, strict=True):
            x = merge(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)


class UNet(TorchSubmission):
    """U-Net for every segmentation task it enters; ``[train]`` ``base_width`` sets its width."""

    def build_model(self, task: TaskInfo) -> nn.Module:
        return UNetModel(
            task.channels, self.num_outputs(task), base_width=self.option("base_width", 32)
        )

    def train_transforms(self, task: TaskInfo) -> A.BasicTransform | None:
        if task.name == "isbi2012-membranes":
            # Electron microscopy has no handedness or up: every flip and right angle is valid.
            # The paper's key augmentation is elastic deformation (smooth random displacements).
            return A.Compose(
                [
                    A.SquareSymmetry(),
                    A.ElasticTransform(
                        alpha=30, sigma=6, border_mode=cv2.BORDER_REFLECT_101, p=0.5
                    ),
                    A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.1, p=0.5),
                ]
            )
        if task.name == "dsb2018-nuclei":
            # Nuclei have no orientation either; stains and modalities differ in brightness.
            return A.Compose(
                [
                    A.SquareSymmetry(),
                    A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
                ]
            )
        if task.name == "jsrt-anatomy":
            # Radiographs keep their handedness (heart on the left): small shifts and zooms only.
            return A.Affine(
                scale=(0.9, 1.1), translate_percent=(-0.05, 0.05), rotate=(-5, 5), p=0.7
            )
        return None
