"""``medbench new``'s templates: they render to folders that load, check and predict."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from medbench.check import check_submission
from medbench.data.prepare import prepare
from medbench.errors import SubmissionError, UnknownNameError
from medbench.submission.api import Dataset, RunContext, Submission, TaskInfo
from medbench.submission.loader import load_entry, read_manifest
from medbench.submission.templates import TEMPLATES, render_template
from medbench.submission.torch import TorchSubmission
from medbench.tasks import get_task


@pytest.fixture(autouse=True)
def cheap_validation_score(monkeypatch):
    from medbench import scoring

    monkeypatch.setattr(
        scoring, "validation_score", lambda task, targets, predictions: 0.5, raising=False
    )


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_a_rendered_template_is_a_loadable_submission(template, tmp_path):
    dest = tmp_path / "submissions" / "my-model"
    files = render_template(template, "my-model", dest)
    assert sorted(p.name for p in files) == ["README.md", "model.py", "submission.toml"]
    assert all(p.is_file() and "{{" not in p.read_text() for p in files)
    manifest = read_manifest(dest)
    assert manifest.name == "my-model" and "my-model" in manifest.summary
    submission = load_entry(manifest)
    assert isinstance(submission, Submission)
    assert isinstance(submission, TorchSubmission) == (template == "torch")
    assert "# my-model" in (dest / "README.md").read_text()


def test_the_torch_template_passes_medbench_check(tmp_path):
    dest = tmp_path / "net"
    render_template("torch", "net", dest)
    results = check_submission(dest)
    assert [r.task for r in results] == ["toy-lesions", "toy-anatomy"]
    assert all(r.ok for r in results), [r.message for r in results]


def test_the_sklearn_template_classifies_toy_lesions(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDBENCH_HOME", str(tmp_path / "home"))
    prepared = prepare("toy-lesions")
    train, val, test = (prepared.split(s) for s in ("train", "val", "test"))
    dest = tmp_path / "linear"
    render_template("sklearn", "linear", dest)
    manifest = read_manifest(dest)
    submission = load_entry(manifest)
    task = TaskInfo.from_spec(get_task("toy-lesions"), manifest.train_for("toy-lesions"))
    ctx = RunContext(
        device="cpu",
        seed=0,
        workdir=tmp_path / "run",
        logger=logging.getLogger("test"),
        train=task.train,
    )
    submission.fit(
        task,
        Dataset(train.images, train.case_ids, train.targets),
        Dataset(val.images, val.case_ids, val.targets),
        ctx,
    )
    pred = submission.predict(task, Dataset(test.images, test.case_ids), ctx)
    assert pred.shape == (len(test),) and pred.dtype == np.float64
    assert np.all((pred >= 0) & (pred <= 1)) and pred.std() > 0


def test_render_refuses_an_existing_folder_and_leaves_it_alone(tmp_path):
    dest = tmp_path / "taken"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(SubmissionError, match=r"taken already exists"):
        render_template("torch", "taken", dest)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def test_unknown_template_names_the_known_ones(tmp_path):
    with pytest.raises(
        UnknownNameError,
        match=r"unknown submission template 'torhc'; did you mean 'torch'\? "
        r"\(known: sklearn, torch\)",
    ):
        render_template("torhc", "x", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_name_the_manifest_would_refuse_is_refused(tmp_path):
    with pytest.raises(SubmissionError, match=r"name 'my model' may hold only"):
        render_template("torch", "my model", tmp_path / "my model")
    assert list(tmp_path.iterdir()) == []
