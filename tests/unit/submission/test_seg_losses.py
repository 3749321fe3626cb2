"""``[train] loss`` of the standard trainer: the four segmentation losses and their weights."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from medbench.errors import SubmissionError
from medbench.submission.api import Dataset, RunContext, TaskInfo
from medbench.submission.choices import LOSSES, check_loss_for
from medbench.submission.instances import instance_targets
from medbench.submission.loader import check_train_table
from medbench.submission.torch import TorchSubmission, training_mask_frequencies
from medbench.submission.trainer import TrainConfig
from medbench.submission.trainer_losses import (
    BCEDiceLoss,
    WeightedBCELoss,
    class_frequencies,
    segmentation_loss,
)
from medbench.tasks import get_task


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    target = (
        torch.rand(4, 3, 16, 16, generator=g) < torch.tensor([0.5, 0.2, 0.03]).view(1, 3, 1, 1)
    ).float()
    logits = torch.randn(4, 3, 16, 16, generator=g)
    return logits, target


def test_the_losses_are_the_documented_ones():
    assert tuple(LOSSES) == ("bce+dice", "dice", "ce", "weighted-ce")
    for name in LOSSES:
        assert TrainConfig.from_options({"loss": name}).loss == name
        check_train_table({"loss": name}, "--set")
    assert TrainConfig.from_options({}).loss == "bce+dice"


@pytest.mark.parametrize("value", ["bce", "Dice", "", "focal"])
def test_a_bad_loss_is_refused_naming_the_allowed_ones(value):
    message = "loss must be one of 'bce+dice', 'dice', 'ce', 'weighted-ce'; got " + repr(value)
    with pytest.raises(SubmissionError, match=r"^\[train\] " + message.replace("+", r"\+")):
        TrainConfig.from_options({"loss": value})
    with pytest.raises(SubmissionError, match=r"^--set: " + message.replace("+", r"\+")):
        check_train_table({"loss": value}, "--set")


def test_a_segmentation_loss_is_refused_for_a_classifier():
    with pytest.raises(SubmissionError, match=r"loss = 'dice' is for segmentation tasks; a binary"):
        check_loss_for("binary", "dice")
    check_loss_for("binary", "bce+dice")  # the default: the kind's own loss applies
    check_loss_for("instance-segmentation", "weighted-ce")


def test_each_loss_is_the_formula_it_names():
    logits, target = _batch()
    p = torch.sigmoid(logits)
    dims = (0, 2, 3)
    dice = 1 - ((2 * (p * target).sum(dims) + 1) / (p.sum(dims) + target.sum(dims) + 1)).mean()
    bce = F.binary_cross_entropy_with_logits(logits, target)
    f = np.array([0.5, 0.2, 0.03])
    w = target * torch.tensor(1 / (2 * f)).float().view(1, 3, 1, 1) + (1 - target) * torch.tensor(
        1 / (2 * (1 - f))
    ).float().view(1, 3, 1, 1)
    per_pixel = -(target * torch.log(p) + (1 - target) * torch.log(1 - p))
    expected = {
        "bce+dice": bce + dice,
        "dice": dice,
        "ce": bce,
        "weighted-ce": (w * per_pixel).mean(),
    }
    for name, value in expected.items():
        got = segmentation_loss(name, f)(logits, target)
        assert torch.allclose(got, value, atol=1e-5), name
    assert isinstance(segmentation_loss("bce+dice"), BCEDiceLoss)


def test_inverse_frequency_weights_balance_each_channel():
    # Over the masks the weights were counted from, each channel's foreground and background
    # weigh the same in total and the mean weight is 1.
    rng = np.random.default_rng(1)
    masks = [rng.random((3, 20, 30)) < np.array([0.4, 0.1, 0.01])[:, None, None] for _ in range(5)]
    f = class_frequencies(masks, 3)
    stacked = np.stack(masks)
    assert np.allclose(f, stacked.mean(axis=(0, 2, 3)))
    loss = WeightedBCELoss(f.tolist())
    t = torch.from_numpy(stacked).float()
    w = t * loss.positive.view(1, 3, 1, 1) + (1 - t) * loss.negative.view(1, 3, 1, 1)
    fg = (w * t).sum(dim=(0, 2, 3))
    bg = (w * (1 - t)).sum(dim=(0, 2, 3))
    assert torch.allclose(fg, bg, rtol=1e-5)
    assert torch.allclose(w.mean(dim=(0, 2, 3)), torch.ones(3), rtol=1e-5)
    # The rarest structure's foreground pixels weigh the most.
    assert loss.positive.argmax() == 2 and float(loss.positive[2]) > 10


def test_frequencies_of_an_absent_structure_stay_finite():
    masks = [np.zeros((2, 4, 4), bool), np.ones((2, 4, 4), bool) * np.array([1, 0])[:, None, None]]
    f = class_frequencies(masks, 2)
    assert f[1] == pytest.approx(1e-4) and 0 < f[0] < 1
    assert torch.isfinite(WeightedBCELoss(f.tolist()).positive).all()
    with pytest.raises(ValueError, match=r"masks must be \(2, H, W\)"):
        class_frequencies([np.zeros((3, 4, 4))], 2)


@pytest.mark.parametrize("name", list(LOSSES))
def test_a_few_steps_of_each_loss_lower_it(name):
    torch.manual_seed(0)
    _, target = _batch(3)
    image = target.mean(dim=1, keepdim=True) + 0.1 * torch.randn(4, 1, 16, 16)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 3, padding=1)
    )
    loss_fn = segmentation_loss(name, target.mean(dim=(0, 2, 3)).numpy())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():
        first = float(loss_fn(model(image), target))
    for _ in range(30):
        optimizer.zero_grad()
        loss = loss_fn(model(image), target)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        assert float(loss_fn(model(image), target)) < 0.9 * first


class Tiny(TorchSubmission):
    def build_model(self, task):
        return torch.nn.Conv2d(task.channels, self.num_outputs(task), 3, padding=1)


def test_fit_weights_by_the_training_masks_and_logs_them(tmp_path, caplog):
    task = TaskInfo.from_spec(get_task("toy-anatomy"))
    rng = np.random.default_rng(0)
    n, (h, w) = 6, task.input_size
    images = rng.integers(0, 256, (n, h, w, task.channels), dtype=np.uint8)
    masks = rng.random((n, task.n_classes, h, w)) < 0.1
    masks[:, 0, :20] = True
    train = Dataset(images, tuple(f"c{i}" for i in range(n)), masks)
    ctx = RunContext(
        device="cpu", seed=0, workdir=tmp_path, logger=logging.getLogger("test.loss"),
        train={"epochs": 1, "batch_size": 3, "loss": "weighted-ce"},
    )  # fmt: skip
    sub = Tiny()
    with caplog.at_level(logging.INFO, logger="test.loss"):
        sub.fit(task, train, train, ctx)
    expected = masks.mean(axis=(0, 2, 3))
    assert np.allclose(sub._mask_frequencies, expected)
    assert isinstance(sub.loss(task), WeightedBCELoss)
    assert "weighted-ce: foreground frequencies " + f"{expected[0]:.4f}" in caplog.text


def test_instance_tasks_count_the_foreground_and_boundary_the_loss_trains():
    task = TaskInfo.from_spec(get_task("dsb2018-nuclei"))
    labels = np.zeros((12, 12), np.int32)
    labels[2:8, 2:8] = 1
    labels[8:11, 6:11] = 2
    data = Dataset([np.zeros((12, 12, 1), np.uint8)], ("a",), [labels])
    expected = instance_targets(labels).reshape(2, -1).mean(axis=1)
    assert expected[1] > 0  # a boundary band to count
    assert np.allclose(training_mask_frequencies(task, data), expected)
