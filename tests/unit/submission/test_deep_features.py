"""deep-features (Bar et al. 2015): frozen ImageNet features + a linear classifier chosen on val."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medbench.data.prepare import prepare
from medbench.errors import SubmissionError
from medbench.submission.api import Dataset, RunContext, TaskInfo
from medbench.submission.loader import load_submission
from medbench.tasks import get_task

pytest.importorskip("efficientnet_lite_pytorch", reason='pip install "medbench[pretrained]"')
FOLDER = Path(__file__).resolve().parents[3] / "submissions" / "deep-features"


def _setup(task_name: str, tmp_path: Path, **overrides):
    manifest, submission = load_submission(FOLDER)
    train = {**manifest.train_for(task_name), **overrides}
    task = TaskInfo.from_spec(get_task(task_name), train)
    ctx = RunContext("cpu", 0, tmp_path, logging.getLogger("test.deep-features"), task.train)
    return submission, task, ctx


@pytest.mark.mirror
def test_frozen_imagenet_features_find_malignant_breast_ultrasound(mirror, tmp_path):
    prepared = prepare("breastmnist")
    train, val, test = (prepared.split(s) for s in ("train", "val", "test"))
    submission, task, ctx = _setup("breastmnist", tmp_path)
    submission.fit(
        task,
        Dataset(train.images, train.case_ids, train.targets),
        Dataset(val.images, val.case_ids, val.targets),
        ctx,
    )
    scores = submission.predict(task, Dataset(test.images, test.case_ids), ctx)
    assert scores.shape == (len(test),) and np.all((scores >= 0) & (scores <= 1))
    assert roc_auc_score(np.asarray(test.targets), scores) > 0.8
    # The record will say what was chosen on val, and which weights were used.
    chosen = ctx.notes["features"].split(",")[0]
    assert chosen in ("l5", "l6", "l7", "l5+lbp", "l6+lbp", "l7+lbp")
    assert len(ctx.notes["weights_sha256"]) == 64


def test_a_fixed_variant_and_a_bad_one(tmp_path):
    from medbench.check import synthetic_split

    spec = get_task("retinamnist")
    rng = np.random.default_rng(0)
    train, val, test = (synthetic_split(spec, n, rng) for n in (20, 10, 6))
    submission, task, ctx = _setup("retinamnist", tmp_path, features="l6", image_size=64)
    submission.fit(task, train, val, ctx)
    assert ctx.notes["features"].startswith("l6,")
    proba = submission.predict(task, Dataset(test.images, test.case_ids), ctx)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    submission, task, ctx = _setup("retinamnist", tmp_path, features="l9")
    with pytest.raises(SubmissionError, match="features must be one of"):
        submission.fit(task, train, val, ctx)
