"""``[train] heads = "cumulative"``: Gulshan et al.'s binary heads on ordered classes."""

from __future__ import annotations

import pytest
import torch

from medbench.errors import SubmissionError
from medbench.submission.api import TaskInfo
from medbench.submission.heads import (
    check_heads,
    class_probabilities,
    cumulative_loss,
    cumulative_targets,
    outputs,
)
from medbench.submission.trainer import TrainConfig


def test_targets_are_one_column_per_level():
    t = cumulative_targets(torch.tensor([0, 1, 2, 4]), 4)
    assert t.tolist() == [[0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]]


def test_class_probabilities_sum_to_one_and_read_the_levels():
    heads = torch.tensor([[0.9, 0.6, 0.2, 0.1], [0.3, 0.5, 0.4, 0.0]])  # second row not monotone
    probs = class_probabilities(heads)
    assert probs.shape == (2, 5)
    assert torch.allclose(probs.sum(1), torch.ones(2))
    assert torch.allclose(probs[0], torch.tensor([0.1, 0.3, 0.4, 0.1, 0.1]))
    # a later head above an earlier one is capped by it: P(>= 2) <= P(>= 1)
    assert torch.allclose(probs[1], torch.tensor([0.7, 0.0, 0.0, 0.3, 0.0]))
    assert (probs >= 0).all()
    # the referable view (grade >= 2) is head 2 where the heads are monotone
    assert probs[0, 2:].sum().item() == pytest.approx(0.6)


def test_the_loss_falls_as_the_heads_learn_the_levels():
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = (x[:, 0] > -0.5).long() + (x[:, 0] > 0.5).long()  # three ordered classes
    model = torch.nn.Linear(3, 2)
    loss_fn = cumulative_loss()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    first = loss_fn(model(x), y).item()
    for _ in range(50):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.6 * first
    probs = class_probabilities(torch.sigmoid(model(x)))
    assert (probs.argmax(1) == y).float().mean() > 0.8


def test_outputs_and_checks():
    assert outputs("cumulative", "multiclass", 5) == 4
    assert outputs("cumulative", "binary", 2) == 1
    assert outputs("softmax", "multiclass", 5) is None
    assert outputs("cumulative", "multilabel-segmentation", 3) is None
    with pytest.raises(SubmissionError, match="heads must be one of 'softmax', 'cumulative'"):
        check_heads("ordinal", "--set")
    with pytest.raises(SubmissionError, match="heads"):
        TrainConfig.from_options({"heads": "many"})


def test_the_standard_trainer_builds_k_minus_one_heads():
    from medbench.submission.torch import TorchSubmission

    task = TaskInfo(
        name="t", kind="multiclass", classes=("a", "b", "c", "d", "e"), input_size=(32, 32),
        channels=3, metrics=("qwk",), primary_metric="qwk", higher_is_better=True,
    )  # fmt: skip

    class Net(TorchSubmission):
        def build_model(self, task):
            return torch.nn.Linear(3, self.num_outputs(task))

    sub = Net()
    assert sub.num_outputs(task) == 5
    sub.config = TrainConfig.from_options({"heads": "cumulative"})
    assert sub.num_outputs(task) == 4 and sub.build_model(task).out_features == 4
