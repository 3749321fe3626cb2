"""Novikov et al. (IEEE TMI 2018): the U-Net and three variants for chest-radiograph anatomy.

``[train] variant`` picks one; each changes the U-Net in the way the paper names, one idea at a
time, so the table of variants reads as an ablation:

- ``"unet"``: the U-Net (Ronneberger et al. 2015) with padded 3x3 convolutions, BatchNorm and
  ReLU, widths ``w, 2w, 4w, 8w, 16w`` over 4 levels, 2x2 max pooling, 2x2 transposed
  convolutions up, skips by concatenation, a 1x1 head (the architecture of ``submissions/unet``).
- ``"all-dropout"``: a dropout layer after every convolution, after its activation
  (``[train] dropout``, default 0.1).
- ``"all-conv"``: pooling learned (Springenberg et al. 2015): each 2x2 max pooling becomes a
  3x3 convolution with stride 2 (+ BatchNorm, ReLU) at the same width.
- ``"inverted"`` (InvertedNet): All-Dropout with ELU activations, *delayed subsampling* and the
  widths inverted: the most feature maps at full resolution, halved after every pooling in the
  contraction path and doubled after every upsampling in the expansion path (``16w, 8w, 4w,
  2w, w``), since rigid structures such as the clavicles need many high-resolution low-level
  features and few high-level ones.

Where the paper's text was not to hand (only its abstract and descriptions of it were), we had
to choose: the dropout rate (0.1); all-conv without the extra dropout (one change per
variant); "delayed subsampling" read as a 2x2 max pooling at stride 1 whose subsampling is
delayed to the next level's first convolution (stride 2); BatchNorm in every variant.

The loss is the trainer's ``[train] loss``: ``"bce+dice"`` (default), ``"dice"``, ``"ce"`` or
``"weighted-ce"`` (inverse class frequency); see ``medbench.submission.trainer_losses``.
"""

from __future__ import annotations

import albumentations as A
import cv2
import torch
from torch import nn

from medbench import TaskInfo, TorchSubmission

VARIANTS = ("unet", "all-dropout", "all-conv", "inverted")


def conv_block(c_in: int, c_out: int, act: type[nn.Module], dropout: float, stride: int = 1):
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        act(inplace=True),
    ]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return layers


def double_conv(
    c_in: int, c_out: int, act: type[nn.Module], dropout: float, stride: int = 1
) -> nn.Sequential:
    """Two 3x3 convolutions; the first at ``stride`` (2: a delayed subsampling)."""
    return nn.Sequential(
        *conv_block(c_in, c_out, act, dropout, stride), *conv_block(c_out, c_out, act, dropout)
    )


class DelayedPool(nn.Module):
    """2x2 max pooling at stride 1 (padded bottom/right): the window's maximum, no subsampling."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(nn.functional.pad(x, (0, 1, 0, 1), mode="replicate"))


class NovikovNet(nn.Module):
    """``(N, in_channels, H, W)`` -> ``(N, out_channels, H, W)`` logits; H, W multiples of 16."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        variant: str = "unet",
        base_width: int = 16,
        depth: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}; got {variant!r}")
        widths = [base_width * 2**i for i in range(depth + 1)]
        if variant == "inverted":
            widths.reverse()
        act = nn.ELU if variant == "inverted" else nn.ReLU
        p = dropout if variant in ("all-dropout", "inverted") else 0.0
        delayed = variant == "inverted"
        self.variant = variant
        self.down = nn.ModuleList([double_conv(in_channels, widths[0], act, p)])
        self.down.extend(
            double_conv(widths[i], widths[i + 1], act, p, stride=2 if delayed else 1)
            for i in range(depth)
        )
        if variant == "all-conv":
            self.pools = nn.ModuleList(
                nn.Sequential(*conv_block(widths[i], widths[i], act, 0.0, stride=2))
                for i in range(depth)
            )
        elif delayed:
            self.pools = nn.ModuleList(DelayedPool() for _ in range(depth))
        else:
            self.pools = nn.ModuleList(nn.MaxPool2d(2) for _ in range(depth))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
            for i in reversed(range(depth))
        )
        self.merge = nn.ModuleList(
            double_conv(2 * widths[i], widths[i], act, p) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.down[0](x)]
        for pool, block in zip(self.pools, self.down[1:], strict=True):
            skips.append(block(pool(skips[-1])))
        x = skips.pop()  # the bottleneck
        for up, merge in zip(self.up, self.merge, strict=True):
            x = merge(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)


class Novikov(TorchSubmission):
    """The four architectures; ``[train]`` ``variant``, ``base_width``, ``dropout``."""

    def build_model(self, task: TaskInfo) -> nn.Module:
        return NovikovNet(
            task.channels,
            self.num_outputs(task),
            variant=self.option("variant", "unet"),
            base_width=self.option("base_width", 16),
            dropout=self.option("dropout", 0.1),
        )

    def train_transforms(self, task: TaskInfo) -> A.BasicTransform | None:
        if task.name == "isbi2012-membranes":
            # Electron microscopy has no handedness or up; elastic warps as in the U-Net paper.
            return A.Compose(
                [
                    A.SquareSymmetry(),
                    A.ElasticTransform(
                        alpha=30, sigma=6, border_mode=cv2.BORDER_REFLECT_101, p=0.5
                    ),
                    A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.1, p=0.5),
                ]
            )
        if task.name == "jsrt-anatomy":
            # Radiographs keep their handedness (heart on the left): small shifts and zooms only.
            return A.Affine(
                scale=(0.9, 1.1), translate_percent=(-0.05, 0.05), rotate=(-5, 5), p=0.7
            )
        return None
