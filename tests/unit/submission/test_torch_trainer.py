"""The standard PyTorch trainer (TorchSubmission) on the toy tasks, on CPU.

Tiny models keep every fit to seconds; each test asserts a property of the trainer (it learns,
it is deterministic, a resumed run equals an uninterrupted one, it keeps its checkpoints).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from medbench.data.prepare import prepare
from medbench.errors import SubmissionError
from medbench.submission.api import Dataset, RunContext, TaskInfo
from medbench.submission.torch import TorchSubmission
from medbench.tasks import get_task

EPOCH_KEYS = {"epoch", "epochs", "loss", "val_metric", "images_per_s", "seconds"}


# --- fixtures ------------------------------------------------------------------------------------


def _numpy_dice(truth: np.ndarray, pred: np.ndarray) -> float:
    """Mean over cases and classes of Dice; pairs with an empty truth and prediction are skipped."""
    inter = (truth & pred).sum(axis=(2, 3))
    total = truth.sum(axis=(2, 3)) + pred.sum(axis=(2, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(total > 0, 2 * inter / total, np.nan)
    return float(np.nanmean(dice))


def _fallback_validation_score(task, targets, predictions) -> float:
    spec = get_task(task if isinstance(task, str) else task.name)
    if spec.kind == "multilabel-segmentation":
        return _numpy_dice(np.asarray(targets, bool), np.asarray(predictions) >= 0.5)
    return float(roc_auc_score(np.asarray(targets), np.asarray(predictions)))


@pytest.fixture(scope="module", autouse=True)
def validation_score() -> Iterator[None]:
    """The lead's ``scoring.validation_score`` when it works, else a local stand-in."""
    from medbench import scoring

    with pytest.MonkeyPatch.context() as mp:
        try:
            scoring.validation_score("toy-lesions", np.array([0, 1]), np.array([0.2, 0.8]))
        except Exception:
            mp.setattr(scoring, "validation_score", _fallback_validation_score, raising=False)
        yield


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Dataset]]]:
    """Prepared toy-anatomy and toy-lesions splits as labelled Datasets (the tests score test)."""
    home = tmp_path_factory.mktemp("medbench-home-torch")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDBENCH_HOME", str(home))
        out = {}
        for name in ("toy-anatomy", "toy-lesions"):
            prepared = prepare(name)
            splits = {s: prepared.split(s) for s in ("train", "val", "test")}
            out[name] = {s: Dataset(d.images, d.case_ids, d.targets) for s, d in splits.items()}
        yield out


def _task(name: str) -> TaskInfo:
    return TaskInfo.from_spec(get_task(name))


def _ctx(workdir: Path, train: dict, **kw) -> RunContext:
    return RunContext(
        device="cpu",
        seed=kw.pop("seed", 0),
        workdir=workdir,
        logger=logging.getLogger("test.torch"),
        train=train,
        **kw,
    )


def _unlabelled(data: Dataset) -> Dataset:
    return Dataset(data.images, data.case_ids)


def _subset(data: Dataset, n: int) -> Dataset:
    return Dataset(data.images[:n], data.case_ids[:n], data.targets[:n])


# --- tiny models ---------------------------------------------------------------------------------


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())


class TinyUNet(nn.Module):
    def __init__(self, c_in: int, c_out: int, width: int = 8) -> None:
        super().__init__()
        self.enc = _block(c_in, width)
        self.mid = nn.Sequential(nn.MaxPool2d(2), _block(width, 2 * width), nn.Dropout2d(0.1))
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.dec = _block(2 * width, width)
        self.head = nn.Conv2d(width, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.enc(x)
        return self.head(self.dec(torch.cat([e, self.up(self.mid(e))], dim=1)))


class TinySeg(TorchSubmission):
    def build_model(self, task: TaskInfo) -> nn.Module:
        return TinyUNet(task.channels, self.num_outputs(task))


class TinySegAugmented(TinySeg):
    def train_transforms(self, task: TaskInfo):
        return A.Compose([A.HorizontalFlip(), A.Affine(rotate=(-15, 15), p=0.5)])


class StatisticsPool(nn.Module):
    """``(N, C, H, W)`` -> ``(N, 2C)``: spatial mean and standard deviation of each channel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)


class TinyCNN(TorchSubmission):
    # toy-lesions' blob is faint: what separates the classes best is image-wide texture energy,
    # so one conv block with mean/std pooling (standardised by BatchNorm) learns it in seconds.
    def build_model(self, task: TaskInfo) -> nn.Module:
        return nn.Sequential(
            _block(task.channels, 8),
            StatisticsPool(),
            nn.BatchNorm1d(16),
            nn.Linear(16, self.num_outputs(task)),
        )


class _Interrupt(Exception):
    pass


def _interrupt_at(epoch: int):
    """An ``on_epoch`` callback that stops the fit after ``epoch`` (its checkpoint, if any, written)."""

    def hook(info: dict) -> None:
        if info["epoch"] == epoch:
            raise _Interrupt

    return hook


# --- segmentation --------------------------------------------------------------------------------

SEG_TRAIN = {"epochs": 6, "batch_size": 8, "lr": 3e-3}


@pytest.fixture(scope="module")
def seg_run(toy, tmp_path_factory):
    """One 6-epoch fit of the tiny U-Net on toy-anatomy: its predictions, epochs, files."""
    data = toy["toy-anatomy"]
    workdir = tmp_path_factory.mktemp("seg-run")
    events: list[dict] = []
    sub = TinySeg()
    task = _task("toy-anatomy")
    ctx = _ctx(workdir, SEG_TRAIN, on_epoch=events.append)
    started = time.perf_counter()
    sub.fit(task, data["train"], data["val"], ctx)
    fit_s = time.perf_counter() - started
    pred = sub.predict(task, _unlabelled(data["test"]), ctx)
    return {
        "pred": pred,
        "events": events,
        "workdir": workdir,
        "fit_s": fit_s,
        "sub": sub,
        "task": task,
    }


def test_segmentation_beats_the_dummy_on_test_dice(toy, seg_run):
    truth = np.asarray(toy["toy-anatomy"]["test"].targets, bool)
    pred = seg_run["pred"]
    assert pred.shape == truth.shape and pred.dtype == np.float16
    assert np.all((pred >= 0) & (pred <= 1))
    dice = _numpy_dice(truth, pred >= 0.5)
    dummy = _numpy_dice(truth, np.zeros_like(truth))
    assert dummy == 0.0
    assert dice > 0.5, f"tiny U-Net reached test Dice {dice:.3f} in {seg_run['fit_s']:.1f} s"


def test_on_epoch_is_called_once_per_epoch_with_the_progress_keys(seg_run):
    events = seg_run["events"]
    assert [e["epoch"] for e in events] == list(range(1, SEG_TRAIN["epochs"] + 1))
    for e in events:
        assert EPOCH_KEYS <= set(e)
        assert e["epochs"] == SEG_TRAIN["epochs"]
        assert np.isfinite(e["loss"]) and e["images_per_s"] > 0 and e["seconds"] > 0
        assert 0.0 <= e["val_metric"] <= 1.0
    assert events[-1]["loss"] < events[0]["loss"]


def test_checkpoint_and_best_weights_are_written_and_best_is_kept(seg_run):
    workdir = seg_run["workdir"]
    events = seg_run["events"]
    checkpoint = torch.load(workdir / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == SEG_TRAIN["epochs"]
    best_epoch = int(np.argmax([e["val_metric"] for e in events])) + 1
    assert checkpoint["best_epoch"] == best_epoch
    assert checkpoint["best"] == pytest.approx(max(e["val_metric"] for e in events))
    assert {"model", "optimizer", "rng"} <= set(checkpoint)
    best = torch.load(workdir / "best.pt", weights_only=True)
    assert set(best) == set(checkpoint["model"])
    # No temporary files are left behind by the atomic writes.
    assert sorted(p.name for p in workdir.iterdir()) == ["best.pt", "checkpoint.pt"]


def test_predict_in_a_new_instance_loads_best_pt(toy, seg_run):
    task, workdir = seg_run["task"], seg_run["workdir"]
    fresh = TinySeg()
    pred = fresh.predict(task, _unlabelled(toy["toy-anatomy"]["test"]), _ctx(workdir, SEG_TRAIN))
    assert np.array_equal(pred, seg_run["pred"])


def test_predict_without_weights_is_a_clear_error(toy, tmp_path):
    with pytest.raises(SubmissionError, match="best.pt does not exist"):
        TinySeg().predict(
            _task("toy-anatomy"), _unlabelled(toy["toy-anatomy"]["test"]), _ctx(tmp_path, {})
        )


DET_TRAIN = {"epochs": 2, "batch_size": 8}


def _fit_predict(
    toy, workdir: Path, *, seed: int = 0, resume: bool = False, on_epoch=None, train=None
) -> np.ndarray:
    data = toy["toy-anatomy"]
    task = _task("toy-anatomy")
    ctx = _ctx(workdir, train or DET_TRAIN, seed=seed, resume=resume, on_epoch=on_epoch)
    sub = TinySegAugmented()
    sub.fit(task, _subset(data["train"], 48), _subset(data["val"], 16), ctx)
    return sub.predict(task, _unlabelled(_subset(data["test"], 16)), ctx)


@pytest.fixture(scope="module")
def reference_run(toy, tmp_path_factory) -> np.ndarray:
    return _fit_predict(toy, tmp_path_factory.mktemp("reference"))


def test_same_seed_on_cpu_gives_identical_predictions(toy, reference_run, tmp_path):
    again = _fit_predict(toy, tmp_path / "again")
    assert np.array_equal(again, reference_run)
    other = _fit_predict(toy, tmp_path / "other-seed", seed=1)
    assert not np.array_equal(other, reference_run)


def test_a_resumed_run_ends_as_the_uninterrupted_one(toy, reference_run, tmp_path):
    every_epoch = {**DET_TRAIN, "checkpoint_minutes": 0}
    with pytest.raises(_Interrupt):
        _fit_predict(toy, tmp_path, train=every_epoch, on_epoch=_interrupt_at(1))
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 1
    seen: list[int] = []
    resumed = _fit_predict(
        toy,
        tmp_path,
        train=every_epoch,
        resume=True,
        on_epoch=lambda info: seen.append(info["epoch"]),
    )
    assert seen == [2]  # epoch 1 was not trained again
    assert np.array_equal(resumed, reference_run)


def test_checkpoint_every_n_epochs_and_a_resume_from_the_last_one(toy, tmp_path):
    # 3 epochs, checkpoint every 2: written after epochs 2 and 3 only. A run killed in epoch 2's
    # callback (after its checkpoint) resumes at epoch 3; one killed at epoch 1 starts over.
    train = {**DET_TRAIN, "epochs": 3, "checkpoint_every": 2}
    written: list[int | None] = []

    def watch(info: dict) -> None:
        path = tmp_path / "full" / "checkpoint.pt"
        written.append(torch.load(path, weights_only=True)["epoch"] if path.is_file() else None)

    full = _fit_predict(toy, tmp_path / "full", train=train, on_epoch=watch)
    assert written == [None, 2, 3]
    assert (tmp_path / "full" / "best.pt").is_file()

    for killed_at, replayed in ((2, [3]), (1, [1, 2, 3])):
        workdir = tmp_path / f"killed-{killed_at}"
        with pytest.raises(_Interrupt):
            _fit_predict(toy, workdir, train=train, on_epoch=_interrupt_at(killed_at))
        seen: list[int] = []
        resumed = _fit_predict(
            toy, workdir, train=train, resume=True, on_epoch=lambda i, s=seen: s.append(i["epoch"])
        )
        assert seen == replayed
        assert np.array_equal(resumed, full)


def test_by_default_a_checkpoint_is_written_a_minute_after_the_last_one(
    toy, tmp_path, monkeypatch
):
    # Fast epochs: only the last one writes. Epochs that each take 40 s (a fake clock): the
    # second, third... write once 60 s have passed since the previous write.
    import medbench.submission.torch as torch_module

    train = {**DET_TRAIN, "epochs": 4}

    def fit(workdir: Path) -> list[int | None]:
        written: list[int | None] = []

        def watch(info: dict) -> None:
            path = workdir / "checkpoint.pt"
            written.append(torch.load(path, weights_only=True)["epoch"] if path.is_file() else None)

        _fit_predict(toy, workdir, train=train, on_epoch=watch)
        return written

    assert fit(tmp_path / "fast") == [None, None, None, 4]
    ticks = iter(range(0, 10_000, 40))
    monkeypatch.setattr(torch_module, "_clock", lambda: next(ticks))
    # clock: start 0; epoch 1 ends at 40 (no), 2 at 80 (write, 80 - 0 >= 60), the write reads
    # 120; 3 ends at 160 (40 s later: no), 4 is the last (write)
    assert fit(tmp_path / "slow") == [None, 2, 2, 4]


def test_dataloader_workers_do_not_change_the_result(toy, reference_run, tmp_path):
    # Crops, augmentation and order depend on (seed, epoch, case) only, not on the worker.
    data = toy["toy-anatomy"]
    task = _task("toy-anatomy")
    ctx = _ctx(tmp_path, {**DET_TRAIN, "num_workers": 2})
    sub = TinySegAugmented()
    sub.fit(task, _subset(data["train"], 48), _subset(data["val"], 16), ctx)
    pred = sub.predict(task, _unlabelled(_subset(data["test"], 16)), ctx)
    assert np.array_equal(pred, reference_run)


def test_without_resume_an_old_checkpoint_is_ignored(toy, reference_run, tmp_path):
    _fit_predict(toy, tmp_path, seed=1)
    assert (tmp_path / "checkpoint.pt").is_file()
    assert np.array_equal(_fit_predict(toy, tmp_path, resume=False), reference_run)


# --- classification ------------------------------------------------------------------------------


def test_classification_learns_toy_lesions(toy, tmp_path):
    data = toy["toy-lesions"]
    task = _task("toy-lesions")
    events: list[dict] = []
    ctx = _ctx(tmp_path, {"epochs": 8, "batch_size": 32, "lr": 3e-2}, on_epoch=events.append)
    sub = TinyCNN()
    started = time.perf_counter()
    sub.fit(task, data["train"], data["val"], ctx)
    pred = sub.predict(task, _unlabelled(data["test"]), ctx)
    seconds = time.perf_counter() - started
    assert pred.shape == (len(data["test"]),) and pred.dtype == np.float64
    assert np.all((pred >= 0) & (pred <= 1))
    auc = roc_auc_score(np.asarray(data["test"].targets), pred)
    assert auc > 0.6, f"tiny CNN reached test AUC {auc:.3f} in {seconds:.1f} s ({events[-1]})"


def test_multiclass_rows_are_float64_and_sum_to_one(toy, tmp_path):
    data = toy["toy-lesions"]
    # toy-lesions images under a 5-class task: only the output format is under test.
    task = dataclasses.replace(_task("retinamnist"), channels=1)
    sub = TinyCNN()
    ctx = _ctx(tmp_path, {"epochs": 1, "batch_size": 16, "val_every": 5})
    sub.fit(task, _subset(data["train"], 32), _subset(data["val"], 0), ctx)
    pred = sub.predict(task, _unlabelled(_subset(data["test"], 10)), ctx)
    assert pred.shape == (10, 5) and pred.dtype == np.float64
    np.testing.assert_allclose(pred.sum(axis=1), 1.0, atol=1e-12)


# --- contract errors -----------------------------------------------------------------------------


class WrongOutputs(TorchSubmission):
    def build_model(self, task: TaskInfo) -> nn.Module:
        return nn.Conv2d(task.channels, 1, 1)


def test_a_model_with_the_wrong_output_shape_is_refused_before_training(toy, tmp_path):
    data = toy["toy-anatomy"]
    with pytest.raises(
        SubmissionError, match=r"must map .* to \(1, 3, 64, 64\) logits; got \(1, 1, 64, 64\)"
    ):
        WrongOutputs().fit(
            _task("toy-anatomy"), data["train"], data["val"], _ctx(tmp_path, {"epochs": 1})
        )


@pytest.mark.parametrize(
    ("key", "value"), [("epochs", 0), ("batch_size", -1), ("lr", 0.0), ("num_workers", -2)]
)
def test_bad_train_values_are_refused_with_the_value(toy, tmp_path, key, value):
    data = toy["toy-anatomy"]
    with pytest.raises(SubmissionError, match=rf"\[train\] {key} must be .*; got {value}"):
        TinySeg().fit(
            _task("toy-anatomy"), data["train"], data["val"], _ctx(tmp_path, {key: value})
        )


class FlatMetric(TinySeg):
    def validation_metric(self, task, targets, predictions) -> float:
        return 0.5  # never improves after epoch 1


def test_patience_stops_early_and_max_minutes_bounds_the_run(toy, tmp_path):
    data = toy["toy-anatomy"]
    task = _task("toy-anatomy")
    events: list[dict] = []
    ctx = _ctx(tmp_path / "patience", {"epochs": 5, "patience": 2}, on_epoch=events.append)
    FlatMetric().fit(task, _subset(data["train"], 16), _subset(data["val"], 8), ctx)
    assert [e["epoch"] for e in events] == [1, 2, 3]
    assert torch.load(tmp_path / "patience" / "checkpoint.pt", weights_only=True)["best_epoch"] == 1
    events.clear()
    ctx = _ctx(tmp_path / "budget", {"epochs": 50, "max_minutes": 1e-6}, on_epoch=events.append)
    TinySeg().fit(task, _subset(data["train"], 16), _subset(data["val"], 8), ctx)
    assert [e["epoch"] for e in events] == [1]
    assert events[0]["val_metric"] is not None  # the last epoch is always validated
