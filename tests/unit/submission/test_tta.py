"""Test-time augmentation by flips (``[train] tta``) in the standard trainer, on CPU.

Untrained modules with known symmetry stand in for models: one that is flip-equivariant (or
-invariant) by construction must predict the same with and without TTA; one that depends on
where a pixel is must predict the mean of its four flipped passes, each flipped back. The
expected values come from the plain (tta = "none") pipeline run on images flipped in numpy.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from medbench.errors import SubmissionError
from medbench.submission import trainer as T
from medbench.submission.api import Dataset, RunContext, TaskInfo
from medbench.submission.loader import check_train_table, read_manifest
from medbench.submission.torch import TorchSubmission
from medbench.submission.trainer import TrainConfig
from medbench.submission.trainer_data import SEGMENTATION
from medbench.submission.tta import TTA_MODES, average_over_flips, flip_valid
from medbench.tasks import get_task


def _num_outputs(task) -> int:
    """The outputs the standard trainer gives ``task`` (default softmax heads)."""

    class Probe(TorchSubmission):
        def build_model(self, task):
            raise NotImplementedError

    return Probe().num_outputs(task)


# Numpy flips of an (H, W, C) image / a (K, H, W) map, as the modes define them.
IMAGE_FLIPS = {"h": (1,), "v": (0,), "hv": (0, 1)}
MAP_FLIPS = {"h": (-1,), "v": (-2,), "hv": (-2, -1)}
MODE_FLIPS = {"none": [], "hflip": ["h"], "flips": ["h", "v", "hv"]}


def _task(name: str) -> TaskInfo:
    return TaskInfo.from_spec(get_task(name))


def _ctx(workdir: Path, train: dict) -> RunContext:
    return RunContext(
        device="cpu", seed=0, workdir=workdir, logger=logging.getLogger("test.tta"), train=train
    )


def _images(task: TaskInfo, n: int, seed: int = 0) -> Dataset:
    """Random uint8 images at the task's size; native-size tasks get differing sizes that are
    not multiples of 16, so their batches are padded."""
    rng = np.random.default_rng(seed)
    if task.input_size is None:
        sizes = [(40, 56), (24, 30), (33, 17)]
        images = [
            rng.integers(0, 256, (*sizes[i % 3], task.channels), dtype=np.uint8) for i in range(n)
        ]
    else:
        images = rng.integers(0, 256, (n, *task.input_size, task.channels), dtype=np.uint8)
    return Dataset(images, tuple(f"case-{i}" for i in range(n)))


class Probe(TorchSubmission):
    """Predicts with a given untrained module; segmentation probabilities come back as they are
    (float32, before any thresholding or watershed), so they can be compared."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def build_model(self, task: TaskInfo) -> nn.Module:
        return self.module

    def postprocess(self, task: TaskInfo, probabilities: np.ndarray):
        if task.kind in SEGMENTATION:
            return probabilities.copy()
        return super().postprocess(task, probabilities)


def _predict(task: TaskInfo, module: nn.Module, data: Dataset, tmp_path: Path, tta: str | None):
    sub = Probe(module)
    sub._model = sub._new_model(task, torch.device("cpu")).eval()
    train = {"batch_size": 4} if tta is None else {"batch_size": 4, "tta": tta}
    return sub.predict(task, data, _ctx(tmp_path, train))


def _flipped(data: Dataset, which: str) -> Dataset:
    images = data.images
    if isinstance(images, np.ndarray):
        images = np.ascontiguousarray(
            np.flip(images, axis=tuple(a + 1 for a in IMAGE_FLIPS[which]))
        )
    else:
        images = [np.ascontiguousarray(np.flip(im, axis=IMAGE_FLIPS[which])) for im in images]
    return Dataset(images, data.case_ids)


def _hand_mean(task: TaskInfo, module: nn.Module, data: Dataset, tmp_path: Path, mode: str):
    """The mean of the plain predictions on the identity and each flipped copy of ``data``,
    segmentation maps flipped back (numpy flips, independent of the code under test)."""
    passes = [_predict(task, module, data, tmp_path, "none")]
    for which in MODE_FLIPS[mode]:
        pred = _predict(task, module, _flipped(data, which), tmp_path, "none")
        if task.kind in SEGMENTATION:
            pred = [np.flip(p, axis=MAP_FLIPS[which]) for p in pred]
        passes.append(pred)
    if task.kind == "instance-segmentation":  # one map per image, sizes differ
        return [np.mean(case, axis=0) for case in zip(*passes, strict=True)]
    return np.mean(np.stack([np.asarray(p) for p in passes]), axis=0)


def _assert_close(actual, expected) -> None:
    if isinstance(expected, list):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert a.shape == e.shape
            np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)
    else:
        assert np.shape(actual) == np.shape(expected)
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


# --- modules of known symmetry -------------------------------------------------------------------


def _seeded(module: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for p in module.parameters():
        nn.init.normal_(p, std=0.5)
    return module


def pixel_net(task: TaskInfo) -> nn.Module:
    """1x1 convolutions: each output pixel sees only its own input pixel (flip-equivariant)."""
    k = _num_outputs(task)
    return _seeded(nn.Sequential(nn.Conv2d(task.channels, 4, 1), nn.Tanh(), nn.Conv2d(4, k, 1)))


def pooled_net(task: TaskInfo) -> nn.Module:
    """1x1 convolution, global average pool, linear: flip-invariant class logits."""
    k = _num_outputs(task)
    return _seeded(
        nn.Sequential(
            nn.Conv2d(task.channels, 4, 1),
            nn.Tanh(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, k),
        )
    )


class WherePixelIs(nn.Module):
    """Segmentation logits that grow with the column and the row in the (padded) frame: a
    flipped image gives a different map, and a missing flip-back misplaces it."""

    def __init__(self, c_in: int, k: int) -> None:
        super().__init__()
        self.mix = _seeded(nn.Conv2d(c_in, k, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        cols = torch.linspace(-2.0, 2.0, w, device=x.device)
        rows = torch.linspace(0.0, 3.0, h, device=x.device)[:, None]
        y = self.mix(x)
        return y * cols + y.roll(1, dims=1) * rows


class LeftAndTop(nn.Module):
    """Class logits from the means of the left half and the top half of the image: neither
    flip leaves them unchanged."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.head = _seeded(nn.Linear(3, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        left = x[..., : w // 2].mean(dim=(1, 2, 3))
        top = x[..., : h // 2, :].mean(dim=(1, 2, 3))
        corner = x[..., : h // 3, : w // 3].mean(dim=(1, 2, 3))
        return self.head(4 * torch.stack([left, top, corner], dim=1))


def where_pixel_is(task: TaskInfo) -> nn.Module:
    return WherePixelIs(task.channels, _num_outputs(task))


def left_and_top(task: TaskInfo) -> nn.Module:
    return LeftAndTop(_num_outputs(task))


SEG_TASKS = ["toy-anatomy", "dsb2018-nuclei"]  # fixed size; native sizes, padded
CLASS_TASKS = ["toy-lesions", "retinamnist"]  # binary; multiclass


# --- (1) a symmetric model predicts the same with and without TTA ---------------------------------


@pytest.mark.parametrize("mode", ["hflip", "flips"])
@pytest.mark.parametrize(
    ("name", "build"),
    [*[(n, pixel_net) for n in SEG_TASKS], *[(n, pooled_net) for n in CLASS_TASKS]],
)
def test_a_flip_symmetric_model_predicts_the_same_with_tta(tmp_path, name, build, mode):
    task = _task(name)
    data = _images(task, 6)
    module = build(task)
    plain = _predict(task, module, data, tmp_path, "none")
    _assert_close(_predict(task, module, data, tmp_path, mode), plain)


# --- (2) otherwise TTA is the mean of the flipped passes, flipped back ----------------------------


@pytest.mark.parametrize("mode", ["hflip", "flips"])
@pytest.mark.parametrize(
    ("name", "build"),
    [*[(n, where_pixel_is) for n in SEG_TASKS], *[(n, left_and_top) for n in CLASS_TASKS]],
)
def test_tta_is_the_mean_of_the_flipped_passes(tmp_path, name, build, mode):
    task = _task(name)
    data = _images(task, 6)
    module = build(task)
    plain = _predict(task, module, data, tmp_path, "none")
    tta = _predict(task, module, data, tmp_path, mode)
    _assert_close(tta, _hand_mean(task, module, data, tmp_path, mode))
    # The model is not symmetric, so the check above is not vacuous.
    difference = [np.abs(a - b).max() for a, b in zip(tta, plain, strict=True)]
    assert max(difference) > 1e-2


def test_a_position_ramp_by_hand_with_padding():
    # One row [1, 2, 3] padded to width 4; the "model" multiplies by the column index 0..3.
    # Identity: [0, 2, 6, .]. Left-right flip of the image (not of the padding): [3, 2, 1] ->
    # [0, 2, 2, .] -> flipped back [2, 2, 0, .]. Up-down is a no-op on one row. Mean: [1, 2, 3].
    # (Without the flip back: [0, 2, 4]; flipping the padded frame instead: [1.5, 3, 4.5].)
    images = torch.tensor([[[[1.0, 2.0, 3.0, 0.0]]]])
    ramp = torch.arange(4.0)

    def forward(x: torch.Tensor) -> torch.Tensor:
        return x * ramp

    for mode in ("hflip", "flips"):
        out = average_over_flips(forward, images, [(1, 3)], mode)
        assert out[0, 0, 0, :3].tolist() == [1.0, 2.0, 3.0]
    # The same down a column, for the up-down flip: rows [1, 2, 3] padded to 4, times 0..3.
    column = images.transpose(-1, -2)
    out = average_over_flips(lambda x: x * ramp[:, None], column, [(3, 1)], "flips")
    assert out[0, 0, :3, 0].tolist() == [1.0, 2.0, 3.0]


def test_flip_valid_mirrors_each_image_inside_its_own_size_and_is_its_own_inverse():
    batch = torch.arange(2 * 1 * 3 * 4, dtype=torch.float32).reshape(2, 1, 3, 4)
    sizes = [(2, 3), (3, 4)]
    out = flip_valid(batch, sizes, (-1,))
    assert out[0, 0, :2, :3].tolist() == batch[0, 0, :2, :3].flip(-1).tolist()
    assert out[0, 0, 2].tolist() == batch[0, 0, 2].tolist()  # padding row kept
    assert out[0, 0, :, 3].tolist() == batch[0, 0, :, 3].tolist()  # padding column kept
    assert out[1].tolist() == batch[1].flip(-1).tolist()
    for dims in ((-1,), (-2,), (-2, -1)):
        assert torch.equal(flip_valid(flip_valid(batch, sizes, dims), sizes, dims), batch)


def test_classification_probabilities_are_averaged_not_logits():
    # Softmax of the mean logit differs from the mean softmax whenever the passes disagree.
    images = torch.tensor([[[[0.0, 1.0]]]])

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(torch.stack([4 * x[:, 0, 0, 0], torch.zeros(1)], dim=1), dim=1)

    out = average_over_flips(forward, images, [(1, 2)], "hflip")
    expected = (
        torch.softmax(torch.tensor([0.0, 0.0]), 0) + torch.softmax(torch.tensor([4.0, 0.0]), 0)
    ) / 2
    torch.testing.assert_close(out[0], expected)


# --- (3) tta = "none" is the trainer as it was ----------------------------------------------------


def _infer_before(model, loader, device, amp, activation, *, channels_last=True):
    """``trainer.infer`` as it was before TTA, verbatim."""
    model.eval()
    with torch.no_grad():
        for images, sizes in loader:
            images = T.to_input(images, device, channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(images)
            logits = logits.float()
            probs = (
                torch.softmax(logits, dim=1) if activation == "softmax" else torch.sigmoid(logits)
            )
            yield probs.cpu().numpy(), sizes.numpy()


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("toy-anatomy", where_pixel_is),
        ("dsb2018-nuclei", where_pixel_is),
        ("toy-lesions", left_and_top),
    ],
)
def test_tta_none_and_no_tta_key_predict_bit_for_bit_as_before(tmp_path, monkeypatch, name, build):
    task = _task(name)
    data = _images(task, 6)
    module = build(task)
    unset = _predict(task, module, data, tmp_path, None)
    none = _predict(task, module, data, tmp_path, "none")
    monkeypatch.setattr(
        T, "infer", lambda *a, tta="none", tile=None, tile_overlap=0, **kw: _infer_before(*a, **kw)
    )
    before = _predict(task, module, data, tmp_path, None)
    for a, b, c in zip(unset, none, before, strict=True):
        assert np.array_equal(a, b) and np.array_equal(a, c)
    assert TrainConfig().tta == "none" and TrainConfig.from_options({}).tta == "none"


# --- where TTA applies: predict (val and test), not the validation that picks the epoch ----------


class Fitted(Probe):
    def validation_metric(self, task, targets, predictions) -> float:
        return 0.5


def test_fit_validates_without_tta_and_predict_uses_it(tmp_path, monkeypatch):
    task = _task("toy-anatomy")
    data = _images(task, 4)
    rng = np.random.default_rng(1)
    masks = rng.random((4, task.n_classes, *task.input_size)) > 0.5
    train = Dataset(data.images, data.case_ids, masks)
    seen: list[str] = []
    infer = T.infer

    def spy(*args, tta="none", **kwargs):
        seen.append(tta)
        return infer(*args, tta=tta, **kwargs)

    monkeypatch.setattr(T, "infer", spy)
    sub = Fitted(pixel_net(task))
    ctx = _ctx(tmp_path, {"epochs": 2, "batch_size": 4, "tta": "flips"})
    sub.fit(task, train, train, ctx)
    assert seen == ["none", "none"]  # one validation per epoch
    sub.predict(task, data, ctx)
    assert seen[2:] == ["flips"]


# --- (4) a bad value is one clear error -----------------------------------------------------------


ALLOWED = "'none', 'hflip', 'flips'"


@pytest.mark.parametrize("value", ["flop", "Flips", "", "hvflip"])
def test_a_bad_tta_value_is_refused_naming_the_allowed_ones(tmp_path, value):
    message = rf"tta must be one of {ALLOWED}; got {value!r}"
    with pytest.raises(SubmissionError, match=r"^\[train\] " + message):
        TrainConfig.from_options({"tta": value})
    with pytest.raises(SubmissionError, match=r"^--set: " + message):
        check_train_table({"tta": value}, "--set")
    (tmp_path / "submission.toml").write_text(
        '[submission]\nname = "x"\nentry = "model:Entry"\ntasks = ["toy-lesions"]\n'
        f'[train]\nepochs = 1\n[train.toy-lesions]\ntta = "{value}"\n'
    )
    with pytest.raises(SubmissionError, match=r"\[train.toy-lesions\] " + message):
        read_manifest(tmp_path)


def test_a_tta_that_is_not_a_string_is_refused_by_type():
    with pytest.raises(SubmissionError, match=r"--set: tta must be a string; got True"):
        check_train_table({"tta": True}, "--set")
    with pytest.raises(SubmissionError, match=rf"tta must be one of {ALLOWED}; got 1"):
        TrainConfig.from_options({"tta": 1})


def test_the_modes_are_the_documented_ones():
    assert TTA_MODES == ("none", "hflip", "flips")
    for mode in TTA_MODES:
        assert TrainConfig.from_options({"tta": mode}).tta == mode
        check_train_table({"tta": mode}, "--set")


def test_medbench_run_refuses_a_bad_tta_before_it_runs(tmp_path):
    from typer.testing import CliRunner

    from medbench.cli import app

    root = Path(__file__).resolve().parents[3]
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(root / "submissions" / "unet"),
            "--task",
            "toy-anatomy",
            "--set",
            "tta=flop",
            "--results-dir",
            str(tmp_path / "results"),
            "--quiet",
        ],
    )
    assert result.exit_code == 1
    assert f"tta must be one of {ALLOWED}; got 'flop'" in result.output
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.json"))
