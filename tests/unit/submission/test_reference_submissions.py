"""Every folder under ``submissions/`` loads, and fits/predicts the contract's shapes on tiny
synthetic data of every task it enters; the dummy predicts exactly the training priors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from medbench.check import synthetic_split
from medbench.predictions import to_npz_dict, validate
from medbench.submission.api import Dataset, RunContext, Submission, TaskInfo
from medbench.submission.loader import load_entry, read_manifest
from medbench.tasks import TASKS, get_task

ROOT = Path(__file__).resolve().parents[3]
FOLDERS = sorted(p.parent for p in (ROOT / "submissions").glob("*/submission.toml"))
# Tiny and fast: one epoch of a four-channel-wide U-Net on small crops.
FAST = {"epochs": 1, "batch_size": 2, "num_workers": 0, "base_width": 4, "image_size": 32}


@pytest.fixture(autouse=True)
def cheap_validation_score(monkeypatch):
    from medbench import scoring

    # The trainers' per-epoch metric is scoring's concern; here only shapes are under test.
    monkeypatch.setattr(
        scoring, "validation_score", lambda task, targets, predictions: 0.5, raising=False
    )


def _ctx(tmp_path: Path, train: dict) -> RunContext:
    return RunContext(
        device="cpu", seed=0, workdir=tmp_path, logger=logging.getLogger("test.ref"), train=train
    )


def _splits(spec, seed: int = 0) -> tuple[Dataset, Dataset, Dataset]:
    rng = np.random.default_rng(seed)
    return (
        synthetic_split(spec, 8, rng),
        synthetic_split(spec, 4, rng),
        synthetic_split(spec, 4, rng),
    )


def test_the_reference_folders_are_there():
    assert {"dummy", "unet"} <= {p.name for p in FOLDERS}


CASES = [(folder, task) for folder in FOLDERS for task in read_manifest(folder).tasks]


@pytest.mark.parametrize(("folder", "task_name"), CASES, ids=[f"{f.name}-{t}" for f, t in CASES])
def test_submission_predicts_the_contract_shapes(folder, task_name, tmp_path):
    manifest = read_manifest(folder)
    submission = load_entry(manifest)
    assert isinstance(submission, Submission)
    spec = get_task(task_name)
    train_table = {**manifest.train_for(task_name), **FAST}
    task = TaskInfo.from_spec(spec, train_table)
    train, val, test = _splits(spec)
    ctx = _ctx(tmp_path, train_table)
    submission.fit(task, train, val, ctx)
    pred = submission.predict(task, Dataset(test.images, test.case_ids), ctx)
    shapes = [np.shape(im)[:2] for im in test.images] if spec.input.size is None else None
    validate(spec, to_npz_dict(test.case_ids, pred), test.case_ids, shapes=shapes)


def test_dummy_enters_every_task():
    assert set(read_manifest(ROOT / "submissions" / "dummy").tasks) == set(TASKS.names())


@pytest.mark.parametrize(
    "task_name",
    [
        "toy-lesions",
        "messidor2-grading",
        "jsrt-anatomy",
        "isbi2012-membranes",
        "dsb2018-nuclei",
        "ctc-hela",
    ],
)
def test_dummy_predicts_the_training_priors_and_nothing_else(task_name, tmp_path):
    spec = get_task(task_name)
    task = TaskInfo.from_spec(spec)
    train, val, test = _splits(spec)
    if spec.kind in ("binary", "multiclass"):
        # Skewed labels, so that priors differ from uniform.
        labels = np.zeros(len(train), np.int64)
        labels[:3] = np.arange(3) % len(spec.classes)
        labels[0] = len(spec.classes) - 1
        train = Dataset(train.images, train.case_ids, labels)
    dummy = load_entry(read_manifest(ROOT / "submissions" / "dummy"))
    ctx = _ctx(tmp_path, {})
    dummy.fit(task, train, val, ctx)
    pred = dummy.predict(task, Dataset(test.images, test.case_ids), ctx)
    n = len(test)
    if spec.kind == "binary":
        assert pred.shape == (n,) and pred.dtype == np.float64
        np.testing.assert_allclose(pred, np.mean(np.asarray(train.targets) == 1))
    elif spec.kind == "multiclass":
        freq = np.bincount(np.asarray(train.targets), minlength=len(spec.classes)) / len(train)
        assert pred.shape == (n, len(spec.classes))
        np.testing.assert_allclose(pred, np.tile(freq, (n, 1)))
        np.testing.assert_allclose(pred.sum(axis=1), 1.0)
    elif spec.kind == "multilabel-segmentation":
        assert pred.shape == (n, len(spec.classes), *spec.input.size) and pred.dtype == bool
        assert not pred.any()
    else:
        assert [p.shape for p in pred] == [np.shape(im)[:2] for im in test.images]
        assert all(p.dtype == np.int32 and not p.any() for p in pred)


def test_dummy_refuses_to_predict_priors_it_never_fitted(tmp_path):
    from medbench.errors import SubmissionError

    spec = get_task("toy-lesions")
    _, _, test = _splits(spec)
    dummy = load_entry(read_manifest(ROOT / "submissions" / "dummy"))
    with pytest.raises(SubmissionError, match="before fit"):
        dummy.predict(TaskInfo.from_spec(spec), test, _ctx(tmp_path, {}))


def test_unet_architecture_has_four_levels_and_a_configurable_width():
    import torch

    unet = load_entry(read_manifest(ROOT / "submissions" / "unet"))
    task = TaskInfo.from_spec(get_task("jsrt-anatomy"))
    unet.config = type(unet.config).from_options({"base_width": 8})
    model = unet.build_model(task)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    ups = [m for m in model.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(ups) == 4
    assert convs[0].out_channels == 8 and max(c.out_channels for c in convs) == 8 * 2**4
    assert convs[-1].kernel_size == (1, 1) and convs[-1].out_channels == 3
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 1, 64, 48)).shape == (1, 3, 64, 48)
