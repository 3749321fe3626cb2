"""``submissions/ciresan``: the sliding-window classifier, evaluated densely, is the window
classifier applied to every window (Ciresan et al. 2012; Giusti et al. 2013)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location(
    "ciresan_model", ROOT / "submissions" / "ciresan" / "model.py"
)
ciresan = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ciresan)


@torch.no_grad()
def test_dense_evaluation_is_the_window_classifier_at_every_pixel():
    torch.manual_seed(0)
    net = ciresan.WindowClassifier(1, 2, width=4).eval()
    image = torch.randn(1, 1, 70, 81)
    dense = net(image)
    assert dense.shape == (1, 2, 70, 81)
    half = ciresan.WINDOW // 2
    mirrored = F.pad(image, (half, half, half, half), mode="reflect")
    for y, x in [(0, 0), (5, 77), (35, 40), (69, 80), (12, 3), (50, 66)]:
        window = mirrored[..., y : y + ciresan.WINDOW, x : x + ciresan.WINDOW]
        alone = net(window, dense=False)
        assert alone.shape == (1, 2, 1, 1)
        assert torch.allclose(dense[0, :, y, x], alone[0, :, 0, 0], atol=1e-5), (y, x)


def test_the_window_is_the_receptive_field_of_the_strided_network():
    # 63 -> conv4 60 -> pool 30 -> conv5 26 -> pool 13 -> conv4 10 -> pool 5 -> fc 5x5 -> 1
    size = ciresan.WINDOW
    for kernel, pooled in ciresan.STAGES:
        size = size - kernel + 1
        size = size // 2 if pooled else size
    assert size == ciresan.FC_KERNEL
    with pytest.raises(RuntimeError):  # one pixel less and the window network has no output
        ciresan.WindowClassifier(1, 1)(torch.zeros(1, 1, size + 56, size + 56), dense=False)


def test_parameters_and_a_few_steps_lower_the_loss():
    net = ciresan.WindowClassifier(1, 1, width=16)
    expected = (16 * 16 + 16) + (25 * 16 * 16 + 16) + (16 * 16 * 16 + 16)
    expected += 25 * 16 * 64 + 64 + 64 + 1
    assert sum(p.numel() for p in net.parameters()) == expected
    torch.manual_seed(0)
    # Smooth blobs in noise, normalised as the trainer normalises its inputs.
    target = (F.avg_pool2d(torch.randn(2, 1, 48, 48), 9, stride=1) > 0).float()
    image = (target + 0.3 * torch.randn_like(target) - 0.5) / 0.25
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(net(image), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
