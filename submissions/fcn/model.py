"""FCN-8s (Long, Shelhamer & Darrell, CVPR 2015; Shelhamer, Long & Darrell, TPAMI 2017), trained
by medbench's standard trainer, from scratch or from an ImageNet EfficientNet-Lite0.

A classification network made fully convolutional: 1x1 "score" convolutions turn its stride-32
features (``fc7``), and the stride-16 (``pool4``) and stride-8 (``pool3``) features, into class
scores; the coarse scores are upsampled 2x by a learned transposed convolution initialised to
bilinear interpolation, summed with the stride-16 scores, upsampled 2x again, summed with the
stride-8 scores, and a fixed bilinear 8x upsampling brings them to the input size. As in the
paper the skip score layers start at zero, so training begins as FCN-32s and learns the finer
skips from there (the papers reach this by training 32s, 16s and 8s in stages).

From scratch (default) the encoder is VGG-16's layout (2, 2, 3, 3, 3 convolutions per block,
widths ``base_width`` x (1, 2, 4, 8, 8), the paper's 64 at ``base_width = 64``), with BatchNorm
(which postdates VGG) and "same" padding instead of the paper's 100-pixel input padding and crop
layers; ``fc6``/``fc7`` become a 3x3 and a 1x1 convolution of width ``16 * base_width`` (the
paper's 7x7x4096 convolutions would cover 224 px inputs; ours are 64-512 px, where a stride-32
map is 2-16 cells wide) with dropout, as in VGG. With ``[train] pretrained = true`` the encoder is
the offline ImageNet EfficientNet-Lite0 of :mod:`medbench.pretrained`, tapped after its last
block at strides 8 (40 channels) and 16 (112), and at stride 32 after its 1x1 head convolution
(1280): like VGG's ``fc7``, the layer just before the classifier FCN discards.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import albumentations as A
import cv2
import torch
from torch import nn
from torch.nn import functional as F

from medbench import Dataset, RunContext, SubmissionError, TaskInfo, TorchSubmission
from medbench.pretrained import INSTALL, lite, weights_file, weights_info

BACKBONE = "efficientnet_lite0"
VGG16_BLOCKS = (2, 2, 3, 3, 3)  # convolutions per block (Simonyan & Zisserman 2015, config D)
VGG16_WIDTHS = (1, 2, 4, 8, 8)  # block widths in units of base_width (64 in VGG-16)


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


class VGGEncoder(nn.Module):
    """VGG-16-like encoder: ``(N, C, H, W)`` -> features at strides 8, 16 and 32 (``pool3``,
    ``pool4``, ``fc7``) with :attr:`channels` channels; H, W multiples of 32."""

    def __init__(self, in_channels: int, *, base_width: int, drop_rate: float) -> None:
        super().__init__()
        blocks, c = [], in_channels
        for n_convs, factor in zip(VGG16_BLOCKS, VGG16_WIDTHS, strict=True):
            layers: list[nn.Module] = []
            for _ in range(n_convs):
                layers += conv_bn_relu(c, base_width * factor)
                c = base_width * factor
            blocks.append(nn.Sequential(*layers, nn.MaxPool2d(2)))
        self.blocks = nn.ModuleList(blocks)
        fc = 16 * base_width
        self.fc = nn.Sequential(
            *conv_bn_relu(c, fc, 3),
            nn.Dropout(drop_rate),
            *conv_bn_relu(fc, fc, 1),
            nn.Dropout(drop_rate),
        )
        self.channels = (4 * base_width, 8 * base_width, fc)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        pools = []
        for block in self.blocks:
            x = block(x)
            pools.append(x)
        return [pools[2], pools[3], self.fc(pools[4])]


class LiteEncoder(nn.Module):
    """EfficientNet-Lite0 (ImageNet weights or random) as an FCN encoder: features at strides 8,
    16 (the last block of each stride) and 32 (the 1x1 head convolution after the last block)."""

    def __init__(self, in_channels: int, *, pretrained: bool) -> None:
        super().__init__()
        net = _lite_net(in_channels, pretrained=pretrained)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = net._blocks
        self.head = nn.Sequential(net._conv_head, net._bn1, net._swish)
        self.drop_connect_rate = net._global_params.drop_connect_rate or 0.0
        self.taps = _last_block_per_stride(net)
        self.channels = (
            self.blocks[self.taps[8]]._block_args.output_filters,
            self.blocks[self.taps[16]]._block_args.output_filters,
            net._conv_head.out_channels,
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        # medbench hands (x / 255 - 0.5) / 0.25; the Lite weights expect [-1, 1] (pretrained.Lite).
        x = self.stem(x * 0.5)
        features = []
        for i, block in enumerate(self.blocks):
            # Stochastic depth as EfficientNet.extract_features schedules it (0 to 0.2 by depth).
            x = block(x, drop_connect_rate=self.drop_connect_rate * i / len(self.blocks))
            if i in (self.taps[8], self.taps[16]):
                features.append(x)
        return [*features, self.head(x)]


def bilinear_kernel(channels: int, factor: int) -> torch.Tensor:
    """``(channels, channels, 2 * factor, 2 * factor)`` weights making a transposed convolution
    of stride ``factor`` bilinear upsampling, channel by channel (FCN's initialisation)."""
    size = 2 * factor
    center = (size - 1) / 2
    ramp = 1 - (torch.arange(size, dtype=torch.float32) - center).abs() / factor
    weight = torch.zeros(channels, channels, size, size)
    weight[range(channels), range(channels)] = ramp[:, None] * ramp[None, :]
    return weight


def up2(channels: int) -> nn.ConvTranspose2d:
    """Learned 2x upsampling of score maps, initialised to bilinear interpolation."""
    up = nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1, bias=False)
    with torch.no_grad():
        up.weight.copy_(bilinear_kernel(channels, 2))
    return up


class FCN8s(nn.Module):
    """``(N, C, H, W)`` -> ``(N, out_channels, H, W)`` logits; H, W multiples of 32."""

    def __init__(self, encoder: nn.Module, out_channels: int) -> None:
        super().__init__()
        self.encoder = encoder
        c8, c16, c32 = encoder.channels
        self.score_fr = nn.Conv2d(c32, out_channels, 1)
        self.score_pool4 = nn.Conv2d(c16, out_channels, 1)
        self.score_pool3 = nn.Conv2d(c8, out_channels, 1)
        for skip in (self.score_pool4, self.score_pool3):
            nn.init.zeros_(skip.weight)
            nn.init.zeros_(skip.bias)
        self.up_fr = up2(out_channels)
        self.up_pool4 = up2(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f8, f16, f32 = self.encoder(x)
        score = self.up_fr(self.score_fr(f32)) + self.score_pool4(f16)
        score = self.up_pool4(score) + self.score_pool3(f8)
        # The paper fixes the last 8x deconvolution to bilinear interpolation: the same thing.
        return F.interpolate(score, size=x.shape[-2:], mode="bilinear", align_corners=False)


class FCN(TorchSubmission):
    """FCN-8s for every segmentation task it enters. ``[train]``: ``base_width`` (32),
    ``drop_rate`` (0.5, after ``fc6`` and ``fc7``), ``pretrained`` (false: a VGG-like encoder
    from scratch; true: EfficientNet-Lite0 from ImageNet)."""

    size_divisor = 32  # five 2x poolings

    def fit(self, task: TaskInfo, train: Dataset, val: Dataset, ctx: RunContext) -> None:
        if ctx.option("pretrained", False):
            for key, value in weights_info(BACKBONE).items():
                ctx.note(key, value)  # stated in the record
        super().fit(task, train, val, ctx)

    def build_model(self, task: TaskInfo) -> nn.Module:
        if self.option("pretrained", False):
            encoder: nn.Module = LiteEncoder(task.channels, pretrained=True)
        else:
            encoder = VGGEncoder(
                task.channels,
                base_width=int(self.option("base_width", 32)),
                drop_rate=float(self.option("drop_rate", 0.5)),
            )
        return FCN8s(encoder, self.num_outputs(task))

    def train_transforms(self, task: TaskInfo) -> Any:
        return augmentation(task)


def augmentation(task: TaskInfo) -> Any:
    """By task, as the U-Net reference entry augments (so the two compare on the model alone)."""
    if task.name == "isbi2012-membranes":
        # Electron microscopy has no handedness or up; elastic warps as in Ronneberger et al.
        return A.Compose(
            [
                A.SquareSymmetry(),
                A.ElasticTransform(alpha=30, sigma=6, border_mode=cv2.BORDER_REFLECT_101, p=0.5),
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
        return A.Affine(scale=(0.9, 1.1), translate_percent=(-0.05, 0.05), rotate=(-5, 5), p=0.7)
    return None


def _lite_net(in_channels: int, *, pretrained: bool) -> Any:
    """The EfficientNet-Lite0 of :func:`medbench.pretrained.lite` (grey stem for one channel),
    or one clear SubmissionError when its packages are not installed."""
    if pretrained:
        weights_file(BACKBONE)  # raises the SubmissionError naming the package to install
    if importlib.util.find_spec("efficientnet_lite_pytorch") is None:
        raise SubmissionError(
            f"the EfficientNet-Lite model code (efficientnet-lite-pytorch) is not installed: {INSTALL}"
        )
    return lite(BACKBONE, num_classes=1, in_chans=in_channels, pretrained=pretrained).net


def _last_block_per_stride(net: Any) -> dict[int, int]:
    """Output stride -> index of the last block at that stride (the stem has stride 2)."""
    stride, last = 2, {}
    for i, block in enumerate(net._blocks):
        stride *= block._depthwise_conv.stride[0]
        last[stride] = i
    return last
