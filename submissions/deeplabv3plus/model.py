"""DeepLabv3+ (Chen, Zhu, Papandreou, Schroff & Adam, ECCV 2018), trained by medbench's standard
trainer, from scratch or from an ImageNet EfficientNet-Lite0.

An encoder whose last strides are replaced by atrous (dilated) convolutions, so that it stops at
output stride 16 (or 8) with its receptive field intact; atrous spatial pyramid pooling (ASPP,
DeepLabv3: a 1x1 convolution, three 3x3 atrous convolutions and global image pooling, in
parallel, concatenated and fused by a 1x1 convolution); the v3+ decoder: the stride-4 encoder
features reduced by a 1x1 convolution, concatenated with the ASPP output upsampled 4x, two 3x3
convolutions, a 1x1 classifier and a bilinear upsampling to the input size.

Atrous rates: the paper's 6/12/18 at output stride 16 are for 513 px crops, a 33-cell feature
map; the same fractions of our maps (16 cells for the 256 px images and crops) give 3/6/9, the
default here (doubled at output stride 8, as the paper doubles its own). Rates as wide as the
map degenerate to 1x1 convolutions (only the centre tap sees the image), the effect that made
the paper add image pooling, so toy-anatomy's 4-cell maps get 1/2/3 (``submission.toml``).

From scratch (default) the encoder is a small ResNet: a stride-2 stem of two 3x3 convolutions
(``base_width``), then one basic residual block per stage at strides 4, 8, 16 and 32, widths
``base_width`` x (2, 4, 8, 8); strides past the output stride become dilations. With
``[train] pretrained = true`` it is the offline ImageNet EfficientNet-Lite0 of
:mod:`medbench.pretrained`, dilated the same way (the depthwise convolutions of its stride-32
stage, and of the stride-16 one at output stride 8), with the low-level features after its last
stride-4 block (24 channels) and the high-level ones after its last block (320: the 1x1 head
convolution to 1280 is dropped, as DeepLab's MobileNetV2 variant does). The head's widths
follow ``base_width``: ASPP and decoder ``8 * base_width`` (the paper's 256 at 32), low-level
reduction ``1.5 * base_width`` (the paper's 48).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import albumentations as A
import cv2
import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.segmentation.deeplabv3 import ASPP

from medbench import Dataset, RunContext, SubmissionError, TaskInfo, TorchSubmission
from medbench.pretrained import INSTALL, lite, weights_file, weights_info

BACKBONE = "efficientnet_lite0"
OUTPUT_STRIDES = (8, 16)
#: The paper's rates (6, 12, 18) for a 33-cell map at output stride 16, scaled to a 16-cell one.
RATES = {16: (3, 6, 9), 8: (6, 12, 18)}


def conv_bn_relu(
    c_in: int, c_out: int, *, kernel: int = 3, stride: int = 1, dilation: int = 1
) -> list[nn.Module]:
    padding = dilation * (kernel // 2)
    return [
        nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


class BasicBlock(nn.Module):
    """ResNet's basic block (He et al. 2016): two 3x3 convolutions and a shortcut. The first
    convolution strides (or, in a dilated stage, keeps the rate of the features it reads); the
    second reads the block's own output grid, at rate ``dilation``."""

    def __init__(self, c_in: int, c_out: int, *, stride: int, dilation: tuple[int, int]) -> None:
        super().__init__()
        first, second = dilation
        self.body = nn.Sequential(
            *conv_bn_relu(c_in, c_out, stride=stride, dilation=first),
            nn.Conv2d(c_out, c_out, 3, padding=second, dilation=second, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.shortcut = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class ResNetEncoder(nn.Module):
    """A small ResNet: ``(N, C, H, W)`` -> (stride-4 features, features at ``output_stride``),
    with :attr:`channels` channels."""

    def __init__(self, in_channels: int, *, base_width: int, output_stride: int) -> None:
        super().__init__()
        b = base_width
        self.stem = nn.Sequential(*conv_bn_relu(in_channels, b, stride=2), *conv_bn_relu(b, b))
        stages, stride, rate, c = [], 2, 1, b
        for width in (2 * b, 4 * b, 8 * b, 8 * b):
            if stride < output_stride:
                stages.append(BasicBlock(c, width, stride=2, dilation=(rate, rate)))
                stride *= 2
            else:  # atrous: the stride becomes a doubled rate for everything after it
                stages.append(BasicBlock(c, width, stride=1, dilation=(rate, 2 * rate)))
                rate *= 2
            c = width
        self.low, self.high = stages[0], nn.Sequential(*stages[1:])
        self.channels = (2 * b, 8 * b)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = self.low(self.stem(x))
        return low, self.high(low)


class LiteEncoder(nn.Module):
    """EfficientNet-Lite0 (ImageNet weights or random), dilated to ``output_stride``: ``(N, C,
    H, W)`` -> (its last stride-4 block's output, its last block's output)."""

    def __init__(self, in_channels: int, *, pretrained: bool, output_stride: int) -> None:
        super().__init__()
        net = _lite_net(in_channels, pretrained=pretrained)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = net._blocks  # the head convolution and classifier are left out
        self.drop_connect_rate = net._global_params.drop_connect_rate or 0.0
        self.low_tap = _last_block_per_stride(net)[4]
        self.rates = dilate(net, output_stride)
        self.channels = (
            self.blocks[self.low_tap]._block_args.output_filters,
            self.blocks[-1]._block_args.output_filters,
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # medbench hands (x / 255 - 0.5) / 0.25; the Lite weights expect [-1, 1] (pretrained.Lite).
        x = self.stem(x * 0.5)
        low = x
        for i, block in enumerate(self.blocks):
            # Stochastic depth as EfficientNet.extract_features schedules it (0 to 0.2 by depth).
            x = block(x, drop_connect_rate=self.drop_connect_rate * i / len(self.blocks))
            if i == self.low_tap:
                low = x
        return low, x


def dilate(net: Any, output_stride: int) -> list[int]:
    """Turn the strides of an EfficientNet's depthwise convolutions past ``output_stride`` into
    dilations (in place): a convolution that strided keeps the rate of the grid it reads, every
    one after it reads a grid ``stride`` times denser. Returns each block's rate."""
    stride, rate, rates = 2, 1, []
    for block in net._blocks:
        conv = block._depthwise_conv
        step = conv.stride[0]
        conv.dilation = (rate, rate)
        rates.append(rate)
        if step > 1 and stride >= output_stride:
            conv.stride = (1, 1)
            rate *= step
        else:
            stride *= step
    return rates


class DeepLabV3PlusModel(nn.Module):
    """``(N, C, H, W)`` -> ``(N, out_channels, H, W)`` logits; H, W multiples of 16."""

    def __init__(
        self,
        encoder: nn.Module,
        out_channels: int,
        *,
        width: int,
        low_width: int,
        rates: tuple[int, int, int],
    ) -> None:
        super().__init__()
        self.encoder = encoder
        low_c, high_c = encoder.channels
        self.aspp = ASPP(high_c, list(rates), out_channels=width)
        self.reduce = nn.Sequential(*conv_bn_relu(low_c, low_width, kernel=1))
        self.decoder = nn.Sequential(
            *conv_bn_relu(width + low_width, width), *conv_bn_relu(width, width)
        )
        self.classifier = nn.Conv2d(width, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low, high = self.encoder(x)
        y = F.interpolate(
            self.aspp(high), size=low.shape[-2:], mode="bilinear", align_corners=False
        )
        y = self.classifier(self.decoder(torch.cat([y, self.reduce(low)], dim=1)))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


class DeepLabV3Plus(TorchSubmission):
    """DeepLabv3+ for every segmentation task it enters. ``[train]``: ``base_width`` (32),
    ``output_stride`` (16 or 8), ``atrous_rates`` (three ints; default 3/6/9 at output stride
    16, 6/12/18 at 8), ``pretrained`` (false: a small ResNet from scratch; true:
    EfficientNet-Lite0 from ImageNet)."""

    size_divisor = 16  # the stride of the stem and three strided stages
    # Contiguous (NCHW) tensors: with channels_last, the backward pass crashed the process on a
    # CPU (torch 2.14.1: SIGSEGV, or "double free or corruption") at base width 8, whose
    # low-level branch has 12 channels; width 16 did not. NCHW trains at every width.
    channels_last = False

    def fit(self, task: TaskInfo, train: Dataset, val: Dataset, ctx: RunContext) -> None:
        if ctx.option("pretrained", False):
            for key, value in weights_info(BACKBONE).items():
                ctx.note(key, value)  # stated in the record
        super().fit(task, train, val, ctx)

    def output_stride(self) -> int:
        value = self.option("output_stride", 16)
        if value not in OUTPUT_STRIDES:
            raise SubmissionError(
                f"[train] output_stride must be one of {list(OUTPUT_STRIDES)}; got {value!r}"
            )
        return int(value)

    def atrous_rates(self) -> tuple[int, int, int]:
        rates = self.option("atrous_rates")
        if rates is None:
            return RATES[self.output_stride()]
        if (
            not isinstance(rates, list | tuple)
            or len(rates) != 3
            or not all(isinstance(r, int) and r >= 1 for r in rates)
        ):
            raise SubmissionError(
                f"[train] atrous_rates must be three positive integers; got {rates!r}"
            )
        return tuple(rates)

    def build_model(self, task: TaskInfo) -> nn.Module:
        base_width = int(self.option("base_width", 32))
        output_stride = self.output_stride()
        if self.option("pretrained", False):
            encoder: nn.Module = LiteEncoder(
                task.channels, pretrained=True, output_stride=output_stride
            )
        else:
            encoder = ResNetEncoder(
                task.channels, base_width=base_width, output_stride=output_stride
            )
        return DeepLabV3PlusModel(
            encoder,
            self.num_outputs(task),
            width=8 * base_width,
            low_width=3 * base_width // 2,
            rates=self.atrous_rates(),
        )

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
