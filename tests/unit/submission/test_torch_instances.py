"""Instance segmentation in the standard trainer: label map <-> (foreground, boundary) channels,
the watershed post-processing, and TorchSubmission on native-size images."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from medbench.submission.api import Dataset, RunContext, TaskInfo
from medbench.submission.instances import instance_targets, instances_from_probabilities
from medbench.submission.torch import TorchSubmission
from medbench.submission.trainer_data import EpochSampler, TrainingSet
from medbench.tasks import get_task


def discs(shape: tuple[int, int], circles: list[tuple[int, int, int]]) -> np.ndarray:
    """A label map of discs ``(cy, cx, r)``; a later disc never overwrites an earlier one."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    for i, (cy, cx, r) in enumerate(circles, 1):
        labels[((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) & (labels == 0)] = i
    return labels


# Five discs; 1-2, 2-3 and 3-4 overlap, so their objects touch along a shared border.
TOUCHING = [(30, 30, 14), (30, 54, 12), (52, 46, 13), (60, 72, 12), (84, 16, 8)]


def _match_iou(truth: np.ndarray, pred: np.ndarray) -> list[float]:
    """For each true object, IoU with the predicted object that covers most of it."""
    ious = []
    for label in range(1, truth.max() + 1):
        obj = truth == label
        best = np.bincount(pred[obj]).argmax()
        other = pred == best
        ious.append(0.0 if best == 0 else (obj & other).sum() / (obj | other).sum())
    return ious


def test_touching_objects_round_trip_through_foreground_and_boundary():
    truth = discs((100, 100), TOUCHING)
    assert len(np.unique(truth)) == 6
    # The discs really touch: some pixel of 1 has a 4-neighbour of 2.
    assert ((truth[:, :-1] == 1) & (truth[:, 1:] == 2)).any()
    fg, boundary = instance_targets(truth)
    pred = instances_from_probabilities(fg.astype(np.float32), boundary.astype(np.float32))
    assert pred.dtype == np.int32 and pred.shape == truth.shape
    assert pred.max() == truth.max() == 5
    assert np.array_equal(pred > 0, truth > 0)
    ious = _match_iou(truth, pred)
    assert min(ious) > 0.8, ious


def test_the_boundary_is_a_two_pixel_band_inside_each_object():
    truth = discs((64, 64), [(32, 32, 15)])
    fg, boundary = instance_targets(truth)
    assert np.array_equal(fg, truth > 0)
    assert not (boundary & ~fg).any()
    # For one object the interior is the foreground eroded by a 5x5 square (2 pixels each way).
    interior = ndimage.binary_erosion(fg, structure=np.ones((5, 5)), border_value=1)
    assert np.array_equal(fg & ~boundary, interior)


def test_touching_labels_get_a_band_on_both_sides():
    truth = np.zeros((10, 20), np.int32)
    truth[:, :10], truth[:, 10:] = 1, 2
    _, boundary = instance_targets(truth)
    assert np.array_equal(np.flatnonzero(boundary[5]), [8, 9, 10, 11])
    # The image border is not an object edge (objects cut by a crop).
    assert not boundary[0, 0] and not boundary[:, 0].any()


def test_objects_thinner_than_the_band_are_kept_and_noise_seeds_are_flooded():
    labels = np.zeros((40, 40), np.int32)
    labels[5:8, 5:35] = 1  # 3 pixels thick: all band, no seed
    labels[15:35, 10:30] = 2
    fg, boundary = (c.astype(np.float32) for c in instance_targets(labels))
    boundary[15, 10] = 0.0  # a lone corner pixel would be a 1-pixel seed: too small to count
    pred = instances_from_probabilities(fg, boundary)
    assert pred.max() == 2
    assert (pred[labels == 1] > 0).all()
    assert len(np.unique(pred[labels == 1])) == 1 and len(np.unique(pred[labels == 2])) == 1


def test_empty_and_mismatched_inputs():
    assert not instances_from_probabilities(np.zeros((5, 6)), np.zeros((5, 6))).any()
    with pytest.raises(ValueError, match=r"one shape; got \(5, 6\) and \(6, 5\)"):
        instances_from_probabilities(np.zeros((5, 6)), np.zeros((6, 5)))
    with pytest.raises(ValueError, match=r"must be 2-D \(H, W\); got shape \(2, 5, 6\)"):
        instance_targets(np.zeros((2, 5, 6), np.int32))


# --- TorchSubmission on a native-size instance task ----------------------------------------------


def _native_split(n: int, rng: np.random.Generator) -> Dataset:
    """Bright discs on a dark background; images of differing sizes, some below the crop."""
    sizes = [(40, 56), (24, 30), (48, 48)]
    images, labels = [], []
    for i in range(n):
        h, w = sizes[i % len(sizes)]
        circles = [
            (int(rng.integers(6, h - 6)), int(rng.integers(6, w - 6)), int(rng.integers(4, 7)))
            for _ in range(3)
        ]
        lab = discs((h, w), circles)
        image = (40 + 150 * (lab > 0) + rng.normal(0, 10, (h, w))).clip(0, 255).astype(np.uint8)
        images.append(np.repeat(image[:, :, None], 3, axis=2))
        labels.append(lab.astype(np.uint16))
    return Dataset(images, tuple(f"case-{i}" for i in range(n)), labels)


class TwoChannelNet(TorchSubmission):
    def build_model(self, task: TaskInfo) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(task.channels, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, self.num_outputs(task), 3, padding=1),
        )


def test_training_crops_are_padded_and_carry_foreground_and_boundary():
    data = _native_split(3, np.random.default_rng(0))
    dataset = TrainingSet(data, "instance-segmentation", crop=32, divisor=16)
    for key in EpochSampler(3, seed=0):
        image, target = dataset[key]
        assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
        assert target.shape == (2, 32, 32) and target.dtype == torch.uint8
        fg, band = target.bool()
        assert fg.any() and band.any() and not (band & ~fg).any()


def test_instance_predictions_are_int32_label_maps_at_each_image_size(tmp_path, monkeypatch):
    from medbench import scoring

    # Only the prediction format is under test; the metric itself belongs to scoring's tests.
    monkeypatch.setattr(
        scoring, "validation_score", lambda task, targets, predictions: 0.5, raising=False
    )
    rng = np.random.default_rng(0)
    task = TaskInfo.from_spec(get_task("dsb2018-nuclei"))
    train, val, test = _native_split(12, rng), _native_split(3, rng), _native_split(4, rng)
    ctx = RunContext(
        device="cpu",
        seed=0,
        workdir=tmp_path,
        logger=logging.getLogger("test"),
        train={"epochs": 2, "batch_size": 4, "image_size": 32, "lr": 1e-2},
    )
    sub = TwoChannelNet()
    sub.fit(task, train, val, ctx)
    pred = sub.predict(task, Dataset(test.images, test.case_ids), ctx)
    assert isinstance(pred, list) and len(pred) == len(test)
    for p, image in zip(pred, test.images, strict=True):
        assert p.dtype == np.int32 and p.shape == image.shape[:2]
        assert p.min() >= 0
