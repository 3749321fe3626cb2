"""Overlap-tile inference (``[train] tile``, ``tile_overlap``): windows, blending, no seams."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from torch import nn

from medbench.errors import SubmissionError
from medbench.submission.api import Dataset, RunContext, TaskInfo
from medbench.submission.choices import check_tile
from medbench.submission.loader import check_train_table
from medbench.submission.tiles import ramp, tiled, window_starts
from medbench.submission.torch import TorchSubmission
from medbench.submission.trainer import TrainConfig
from medbench.tasks import get_task


@pytest.mark.parametrize(
    ("length", "tile", "overlap"),
    [(512, 256, 32), (300, 128, 16), (1000, 256, 64), (257, 256, 32), (129, 64, 0)],
)
def test_windows_cover_the_axis_evenly_with_at_least_the_overlap(length, tile, overlap):
    starts = window_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] == length - tile
    gaps = np.diff(starts)
    assert (gaps <= tile - overlap).all()  # neighbours overlap by at least `overlap`
    assert gaps.max() - gaps.min() <= 1  # evenly spaced (rounding)
    # As few windows as that allows: one fewer could not keep the overlap.
    n = len(starts)
    assert n == 1 or (length - tile) / (n - 2 if n > 2 else 1) > tile - overlap or n == 2


def test_an_axis_that_fits_is_one_window():
    assert window_starts(256, 256, 32) == [0]
    assert window_starts(100, 256, 32) == [0]


def test_the_ramp_rises_over_the_overlap_on_the_sides_with_a_neighbour():
    w = ramp(8, 4, before=True, after=False)
    expected = [math.sin(math.pi / 2 * (i + 0.5) / 4) ** 2 for i in range(4)] + [1.0] * 4
    assert w == pytest.approx(expected)
    assert w[0] < 0.04 and all(a < b for a, b in zip(w[:4], w[1:5], strict=True))
    assert ramp(8, 4, before=False, after=True) == w[::-1]
    assert ramp(8, 0, before=True, after=True) == [1.0] * 8


def _forward(model: nn.Module):
    def forward(images: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(model(images))

    return forward


class Constant(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 2, *x.shape[-2:]), 0.3) + 0 * x[:, :1]


def test_a_constant_model_predicts_the_same_tiled_and_whole():
    images = torch.randn(2, 1, 200, 328)
    whole = Constant()(images)
    out = tiled(lambda x: Constant()(x), 64, 16)(images)
    assert out.shape == whole.shape
    assert torch.allclose(out, whole, atol=1e-6)


def _local_net(outputs: int = 1) -> nn.Module:
    """Three zero-padded 3x3 convolutions: a 7-pixel receptive field and border effects."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 4, 3, padding=1), nn.Tanh(),
        nn.Conv2d(4, outputs, 3, padding=1),
    )  # fmt: skip
    for p in net.parameters():
        nn.init.normal_(p, 0.0, 0.5)
    return net.eval()


def _smooth_image(h: int, w: int) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return (torch.sin(3 * x) + torch.cos(2 * y))[None, None]


def _jumps_at(out: torch.Tensor, edges: list[int]) -> float:
    """The largest step between horizontal neighbours across the columns ``edges``."""
    steps = (out[..., 1:] - out[..., :-1]).abs()
    return float(steps[..., [e - 1 for e in edges]].max())


@torch.no_grad()
def test_blending_leaves_no_seams_on_a_smooth_image():
    net, image = _local_net(), _smooth_image(96, 352)
    forward = _forward(net)
    whole = forward(image)
    smooth = float((whole[..., 5:-4] - whole[..., 4:-5]).abs().max())  # its own largest step

    def seams(overlap: int) -> tuple[float, float]:
        """The largest step across a window edge inside the image, and the largest
        difference from the whole-image prediction."""
        starts = window_starts(352, 96, overlap)
        edges = sorted(set(starts[1:]) | {s + 96 for s in starts[:-1]})
        out = tiled(forward, 96, overlap)(image)
        return _jumps_at(out, edges), float((out - whole).abs().max())

    blended, blended_error = seams(24)
    cut, cut_error = seams(0)  # the control: no ramp, windows averaged where they overlap
    assert cut > 10 * smooth  # the zero padding at a window's edge shows without blending
    assert blended <= smooth  # with it, no step at an edge exceeds the image's own steps
    assert blended_error < 0.1 * cut_error


def test_tile_settings_are_checked_with_one_clear_line():
    assert TrainConfig.from_options({"tile": 256, "tile_overlap": 32}).tile == 256
    assert TrainConfig.from_options({}).tile is None
    with pytest.raises(SubmissionError, match=r"tile must be a positive integer"):
        TrainConfig.from_options({"tile": 0})
    with pytest.raises(
        SubmissionError,
        match=r"tile_overlap must be an integer from 0 to half the tile \(64 px\); got 33",
    ):
        TrainConfig.from_options({"tile": 64, "tile_overlap": 33})
    assert TrainConfig.from_options({"tile": 64, "tile_overlap": 32}).tile_overlap == 32
    with pytest.raises(SubmissionError, match=r"multiple of the model's size divisor 16; got 100"):
        check_tile(100, 8, 16)
    with pytest.raises(SubmissionError, match=r"--set: tile must be an integer"):
        check_train_table({"tile": "big"}, "--set")


class Local(TorchSubmission):
    size_divisor = 16

    def build_model(self, task):
        return _local_net(self.num_outputs(task))

    def postprocess(self, task, probabilities):
        return probabilities.copy()


def _ctx(tmp_path, train):
    return RunContext(
        device="cpu", seed=0, workdir=tmp_path, logger=logging.getLogger("t"), train=train
    )


@torch.no_grad()
def test_predict_tiles_native_size_images_and_crops_them_back(tmp_path):
    task = TaskInfo.from_spec(get_task("dsb2018-nuclei"))  # native size: one image per batch
    rng = np.random.default_rng(0)
    sizes = [(100, 230), (64, 64)]
    images = [rng.integers(0, 256, (*s, 1), dtype=np.uint8) for s in sizes]
    data = Dataset(images, ("a", "b"))
    preds = {}
    for tile in (None, 64):
        sub = Local()
        sub._model = sub._new_model(task, torch.device("cpu")).eval()
        train = {"tile": tile, "tile_overlap": 16} if tile else {}
        preds[tile] = sub.predict(task, data, _ctx(tmp_path, train))
    for whole, tiles, size in zip(preds[None], preds[64], sizes, strict=True):
        assert whole.shape == tiles.shape == (2, *size)
    assert not np.allclose(preds[None][0], preds[64][0])  # really tiled
    assert np.abs(preds[None][0] - preds[64][0]).mean() < 0.05
    assert np.array_equal(preds[None][1], preds[64][1])  # fits one tile: untouched


def test_tiles_are_refused_for_a_classifier(tmp_path):
    task = TaskInfo.from_spec(get_task("toy-lesions"))
    data = Dataset(np.zeros((2, *task.input_size, 1), np.uint8), ("a", "b"), np.array([0, 1]))
    with pytest.raises(SubmissionError, match=r"\[train\] tile is for segmentation; 'toy-lesions'"):
        Local().fit(task, data, data, _ctx(tmp_path, {"tile": 64}))
