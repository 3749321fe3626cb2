"""``submissions/novikov``: the U-Net and Novikov et al.'s three variants (``[train] variant``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

from medbench.submission.trainer_losses import segmentation_loss

ROOT = Path(__file__).resolve().parents[3]


def _module(folder: str, name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "submissions" / folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


novikov = _module("novikov", "novikov_model")
VARIANTS = ("unet", "all-dropout", "all-conv", "inverted")


def _double(c_in: int, c_out: int) -> int:
    """Two bias-free 3x3 convolutions, each with a BatchNorm (weight and bias)."""
    return 9 * c_in * c_out + 2 * c_out + 9 * c_out * c_out + 2 * c_out


def expected_parameters(variant: str, c_in: int, c_out: int, w: int, depth: int = 4) -> int:
    """Counted from the architecture as the model's docstring describes it."""
    widths = [w * 2**i for i in range(depth + 1)]
    if variant == "inverted":
        widths.reverse()
    total = _double(c_in, widths[0])
    total += sum(_double(widths[i], widths[i + 1]) for i in range(depth))
    # up: 2x2 transposed convolutions (with bias), then a double convolution on the skip + up
    total += sum(4 * widths[i + 1] * widths[i] + widths[i] for i in range(depth))
    total += sum(_double(2 * widths[i], widths[i]) for i in range(depth))
    if variant == "all-conv":  # a stride-2 3x3 convolution + BatchNorm replaces each pooling
        total += sum(9 * widths[i] ** 2 + 2 * widths[i] for i in range(depth))
    return total + widths[0] * c_out + c_out  # the 1x1 head


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(("c_in", "c_out"), [(1, 3), (3, 2)])
def test_each_variant_maps_images_to_same_size_logits_with_the_parameters_expected(
    variant, c_in, c_out
):
    net = novikov.NovikovNet(c_in, c_out, variant=variant, base_width=4).eval()
    with torch.no_grad():
        out = net(torch.randn(2, c_in, 64, 48))
    assert out.shape == (2, c_out, 64, 48)
    assert sum(p.numel() for p in net.parameters()) == expected_parameters(variant, c_in, c_out, 4)


def test_the_variants_differ_where_the_paper_says():
    nets = {v: novikov.NovikovNet(1, 3, variant=v, base_width=4) for v in VARIANTS}

    def count(net, kind):
        return sum(isinstance(m, kind) for m in net.modules())

    convs = count(nets["unet"], nn.Conv2d)  # 3x3 convolutions + the 1x1 head
    assert count(nets["unet"], nn.Dropout) == 0
    assert count(nets["all-dropout"], nn.Dropout) == convs - 1  # after every 3x3 convolution
    assert count(nets["all-conv"], nn.MaxPool2d) == 0
    assert count(nets["all-conv"], nn.Conv2d) == convs + 4  # four learned poolings
    inverted = nets["inverted"]
    assert count(inverted, nn.ELU) > 0 and count(inverted, nn.ReLU) == 0
    assert count(inverted, nn.Dropout) == convs - 1
    widths = [block[0].out_channels for block in inverted.down]
    assert widths == [64, 32, 16, 8, 4]  # 16w at full resolution, halved per level
    # Delayed subsampling: pooling at stride 1, the next level's first convolution at stride 2.
    assert all(p.pool.stride == 1 for p in inverted.pools)
    assert [block[0].stride for block in inverted.down] == [(1, 1)] + [(2, 2)] * 4
    # InvertedNet has far fewer parameters than the U-Net at the same total width budget.
    u8 = sum(p.numel() for p in novikov.NovikovNet(1, 3, base_width=8).parameters())
    inv2 = sum(
        p.numel() for p in novikov.NovikovNet(1, 3, variant="inverted", base_width=2).parameters()
    )
    assert inv2 < u8 / 5


def test_the_unet_variant_is_the_unet_submission_architecture():
    unet = _module("unet", "unet_model").UNetModel(1, 3, base_width=8)
    ours = novikov.NovikovNet(1, 3, variant="unet", base_width=8)
    theirs_shapes = [tuple(p.shape) for p in unet.parameters()]
    assert sorted(theirs_shapes) == sorted(tuple(p.shape) for p in ours.parameters())


def test_an_unknown_variant_is_refused():
    with pytest.raises(ValueError, match=r"variant must be one of unet, all-dropout, all-conv"):
        novikov.NovikovNet(1, 3, variant="resnet")


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_few_training_steps_lower_the_loss_of_each_variant(variant):
    torch.manual_seed(0)
    target = torch.zeros(2, 2, 32, 32)
    target[:, 0, 8:24, 4:16] = 1
    target[:, 1, 10:14, 18:30] = 1
    image = target.sum(dim=1, keepdim=True) + 0.2 * torch.randn(2, 1, 32, 32)
    net = novikov.NovikovNet(1, 2, variant=variant, base_width=4, dropout=0.0)
    loss_fn = segmentation_loss("bce+dice")
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    net.train()
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = loss_fn(net(image), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]
