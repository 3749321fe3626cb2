"""Compute cost: parameters and FLOPs of a hand-counted model, the checks of a reported cost,
and the record's cost object (medbench.cost, medbench.submission.cost)."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from medbench.cost import check_reported, run_cost, summed
from medbench.submission.api import TaskInfo
from medbench.submission.cost import count_parameters, forward_flops
from medbench.submission.torch import TorchSubmission


def small_net() -> nn.Module:
    """Conv2d(1 -> 4, 3x3, pad 1) on 8x8, then Linear(4*8*8 -> 2)."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(256, 2))


def test_parameters_of_a_small_net_by_hand():
    net = small_net()
    # conv: 4 * 1 * 3 * 3 weights + 4 biases = 40; linear: 256 * 2 + 2 = 514
    assert count_parameters(net) == (554, 554)
    net[0].requires_grad_(False)  # a frozen backbone: its weights count, but not as trainable
    assert count_parameters(net) == (554, 514)


def test_a_shared_parameter_counts_once():
    linear = nn.Linear(3, 3, bias=False)
    assert count_parameters(nn.Sequential(linear, linear)) == (9, 9)


def test_flops_of_a_small_net_by_hand():
    net = small_net().train()
    # 2 FLOPs per multiply-add: conv 2 * (4 * 1 * 3 * 3) * (8 * 8) = 4608; linear 2 * 256 * 2
    # = 1024; biases, flatten not counted
    assert forward_flops(net, (1, 8, 8)) == 4608 + 1024
    assert net.training  # put back in the mode it was in
    # the count does not depend on the memory format, and doubles with the image area
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert forward_flops(conv, (3, 16, 16), channels_last=True) == 2 * 8 * 3 * 9 * 16 * 16
    assert forward_flops(conv, (3, 16, 32)) == 2 * forward_flops(conv, (3, 16, 16))


class Tiny(TorchSubmission):
    def build_model(self, task):
        return nn.Conv2d(task.channels, self.num_outputs(task), 3, padding=1)


def task_info(kind: str, size, classes=("a", "b", "c")) -> TaskInfo:
    return TaskInfo(
        name="toy",
        kind=kind,
        classes=classes,
        input_size=size,
        channels=1,
        metrics=("dice",),
        primary_metric="dice",
        higher_is_better=True,
    )


@pytest.mark.parametrize(
    ("size", "expected", "note"),
    [
        ((64, 64), [64, 64], "the task's input size"),
        # the trainer pads segmentation inputs to a multiple of 16: that is what the model sees
        ((60, 70), [64, 80], "the task's input size 60x70, padded to a multiple of 16"),
        (None, [256, 256], "native-size task: at the 256 px training crop"),
    ],
)
def test_torch_submission_reports_its_model_at_the_size_it_sees(size, expected, note):
    sub, task = Tiny(), task_info("multilabel-segmentation", size)
    assert sub.cost(task) is None  # nothing fitted yet: nothing to report
    sub._model = sub.build_model(task)
    cost = sub.cost(task)
    h, w = expected
    assert cost == {
        "params": 3 * 1 * 9 + 3,
        "trainable_params": 30,
        "flops_per_image": 2 * 3 * 1 * 9 * h * w,
        "flops_input": expected,
        "flops_input_note": note,
    }
    assert check_reported(cost) == cost  # what the child checks before writing it


def test_an_untraceable_forward_costs_the_flops_count_not_the_run():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(2))

        def forward(self, x):
            raise RuntimeError("no tracing today")

    sub, task = Tiny(), task_info("binary", (8, 8), ("neg", "pos"))
    sub._model = Odd()
    cost = sub.cost(task)
    assert cost["params"] == 2 and cost["flops_per_image"] is None
    assert cost["flops_input_note"] == "not counted (RuntimeError: no tracing today)"


def test_check_reported_keeps_what_is_well_formed():
    assert check_reported(None) is None
    assert check_reported({}) == {
        "params": None,
        "trainable_params": None,
        "flops_per_image": None,
        "flops_input": None,
        "flops_input_note": "",
    }
    got = check_reported({"params": 10, "flops_input": (32, 48), "flops_input_note": "x" * 999})
    assert got["flops_input"] == [32, 48] and len(got["flops_input_note"]) == 200


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"params": -1}, "cost.params must be null or an integer in [0, 10**18]; got -1"),
        ({"trainable_params": float("nan")}, "cost.trainable_params must be null or an integer"),
        ({"flops_per_image": "lots"}, "cost.flops_per_image must be null or an integer"),
        ({"params": 2, "trainable_params": 3}, "cost.trainable_params (3) exceeds cost.params (2)"),
        ({"flops_input": [8, 8, 8]}, "cost.flops_input must be null or [H, W]"),
        ({"flop": 1}, "cost has unknown field(s) ['flop']"),
        ([1, 2], "cost must be null or an object; got [1, 2]"),
    ],
)
def test_check_reported_says_which_number_is_wrong(value, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        check_reported(value)


def test_run_cost_combines_the_reported_counts_with_the_measured_times():
    reported = check_reported({"params": 554, "trainable_params": 514, "flops_per_image": 5632})
    timings = {"fit_s": 30.0, "predict_s": 2.5, "child_wall_s": 36.0}
    cost = run_cost(
        reported, timings, n_test=50, device="cpu", peak_memory_mb=600.0, peak_gpu_memory_mb=None
    )
    assert cost["params"] == 554 and cost["flops_per_image"] == 5632
    assert cost["predict_s_per_case"] == pytest.approx(0.05)
    assert cost["device_hours"] == pytest.approx(0.01)  # 36 s of the child's wall time
    assert cost["device"] == "cpu" and cost["peak_memory_mb"] == 600.0
    # a failed child reports nothing: the counts are None, the parent's wall time still counts
    failed = run_cost(
        None, {"child_wall_s": 7.2}, n_test=50, device="cpu", peak_memory_mb=None,
        peak_gpu_memory_mb=None,
    )  # fmt: skip
    assert failed["params"] is None and failed["fit_s"] is None
    assert failed["device_hours"] == pytest.approx(0.002)


def test_an_ensemble_costs_the_sum_of_its_members():
    a = {
        "params": 10,
        "trainable_params": 10,
        "flops_per_image": 100,
        "fit_s": 1.0,
        "predict_s": 0.5,
        "predict_s_per_case": 0.01,
        "device": "cpu",
        "device_hours": 0.1,
    }
    b = {**a, "flops_per_image": None, "device": "NVIDIA H200"}  # fmt: skip
    total = summed([a, b])
    assert total["params"] == 20 and total["fit_s"] == 2.0 and total["device_hours"] == 0.2
    assert total["flops_per_image"] is None  # one member did not report it
    assert total["device"] == "NVIDIA H200 + cpu"
    assert summed([a, None]) is None  # a member from before medbench recorded cost
