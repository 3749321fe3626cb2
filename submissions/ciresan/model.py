"""Sliding-window pixel classification (Ciresan, Giusti, Gambardella & Schmidhuber, NIPS 2012).

The ISBI 2012 winner classified every pixel as membrane or not from a square window of the raw
image centred on it, with a plain CNN: convolutions and max pooling, then fully connected
layers, the image's borders mirrored. Here the window is 63 x 63 and the network, after their
smaller net, has three convolution + 2x2 max-pooling stages and two fully connected layers:

    window 63 -> conv 4x4 -> 60 -> pool -> 30 -> conv 5x5 -> 26 -> pool -> 13
              -> conv 4x4 -> 10 -> pool -> 5 -> fully connected (5x5) -> fully connected -> logit

(their widths were 48 maps and 200 hidden units; here ``[train] base_width`` maps, 16, and
``4 * base_width`` hidden units, for a CPU).

Classifying the ~260,000 windows of a 512 x 512 slice one by one repeats almost all of the work.
The same network is evaluated at every pixel at once by *dense evaluation* (Giusti et al., ICIP
2013): each pooling keeps stride 1 and every later layer is dilated by the product of the
strides removed (1, 2, 4, 8), so the output at each pixel is exactly the window classifier's
output on the window centred there (a test checks it against the window-by-window network).
Training is dense as well: every pixel of each random crop is one training window, with the
trainer's loss. Borders are mirrored (reflection padding of 31 pixels), as in the paper.
"""

from __future__ import annotations

import albumentations as A
import cv2
import torch
from torch import nn
from torch.nn import functional as F

from medbench import TaskInfo, TorchSubmission

WINDOW = 63
#: (kernel, pooled after) of the three convolution stages, then the first fully connected layer.
STAGES = ((4, True), (5, True), (4, True))
FC_KERNEL = 5


class WindowClassifier(nn.Module):
    """``(N, C, H, W)`` images -> ``(N, K, H, W)`` logits, each pixel's from the 63 x 63 window
    centred on it (``dense=True``); ``dense=False`` is the same network applied to one window:
    ``(N, C, 63, 63)`` -> ``(N, K, 1, 1)``."""

    def __init__(self, in_channels: int, out_channels: int, *, width: int = 16) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        c = in_channels
        for kernel, _ in STAGES:
            self.convs.append(nn.Conv2d(c, width, kernel))
            c = width
        self.fc1 = nn.Conv2d(width, 4 * width, FC_KERNEL)
        self.fc2 = nn.Conv2d(4 * width, out_channels, 1)

    def forward(self, x: torch.Tensor, *, dense: bool = True) -> torch.Tensor:
        if dense:
            half = WINDOW // 2
            x = F.pad(x, (half, half, half, half), mode="reflect")
        dilation = 1
        for conv, (_, pooled) in zip(self.convs, STAGES, strict=True):
            x = torch.relu(F.conv2d(x, conv.weight, conv.bias, dilation=dilation))
            if pooled:
                if dense:
                    x = F.max_pool2d(x, 2, stride=1, dilation=dilation)
                    dilation *= 2
                else:
                    x = F.max_pool2d(x, 2)
        x = torch.relu(F.conv2d(x, self.fc1.weight, self.fc1.bias, dilation=dilation))
        return self.fc2(x)


class Ciresan(TorchSubmission):
    """The window classifier, evaluated densely; ``[train] base_width`` sets its maps."""

    size_divisor = 1  # no down-sampling: any size in, the same size out
    channels_last = False  # dilated convolutions on few channels: no gain from channels_last

    def build_model(self, task: TaskInfo) -> nn.Module:
        return WindowClassifier(
            task.channels, self.num_outputs(task), width=self.option("base_width", 16)
        )

    def train_transforms(self, task: TaskInfo) -> A.BasicTransform | None:
        # Electron microscopy has no handedness or up (the paper trained on rotated and
        # mirrored windows); small elastic warps as the U-Net entries.
        return A.Compose(
            [
                A.SquareSymmetry(),
                A.ElasticTransform(alpha=30, sigma=6, border_mode=cv2.BORDER_REFLECT_101, p=0.5),
            ]
        )
