"""Conformance of the task catalogue: every registered task has a valid, complete spec."""

from __future__ import annotations

import dataclasses

import pytest

from medbench.data.datasets import DATASETS
from medbench.tasks import TASKS, all_tasks, get_task
from medbench.tasks.spec import KINDS, InputSpec, Metric, Reference
from medbench.tasks.splits import SPLIT_DIR

EXPECTED_TASKS = {
    "ctc-hela",
    "ctc-u373",
    "dsb2018-nuclei",
    "isbi2012-membranes",
    "jsrt-anatomy",
    "jsrt-nodule",
    "messidor2-grading",
    "messidor2-referable",
    "retinamnist",
    "pneumoniamnist",
    "breastmnist",
    "tb-cxr",
    "tb-cxr-montgomery-to-shenzhen",
    "tb-cxr-shenzhen-to-montgomery",
    "toy-anatomy",
    "toy-lesions",
}


def test_the_catalogue_holds_the_sixteen_tasks():
    assert set(TASKS.names()) == EXPECTED_TASKS
    assert [s.name for s in all_tasks()] == sorted(EXPECTED_TASKS)


@pytest.mark.parametrize("name", sorted(EXPECTED_TASKS))
def test_spec_is_valid(name):
    spec = get_task(name)
    assert spec.check() == []
    assert spec.kind in KINDS
    assert spec.primary.name == spec.primary_metric
    assert spec.dataset in DATASETS, f"{name} names unknown data set {spec.dataset!r}"
    assert (SPLIT_DIR / spec.split_file).is_file()
    assert spec.title and spec.description and spec.split_note


def test_every_split_file_belongs_to_a_task():
    files = {p.name for p in SPLIT_DIR.glob("*.csv")}
    assert files == {s.split_file for s in all_tasks()}


def _valid_spec():
    return get_task("jsrt-nodule")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"kind": "regression"}, "kind 'regression' is not one of"),
        ({"classes": ()}, "no classes"),
        ({"classes": ("a", "a")}, "duplicate class names"),
        ({"classes": ("a", "b", "c")}, "a binary task has 2 classes"),
        ({"primary_metric": "f1"}, "primary metric 'f1' not in"),
        ({"version": 0}, "version must be >= 1"),
        ({"split_sha256": "abc"}, "split_sha256 is not a SHA-256 hex digest"),
        ({"input": InputSpec((8, 8), 2)}, "channels must be 1 or 3; got 2"),
        (
            {"references": (Reference("someone", "f1", 0.5, "note"),)},
            "reference 'someone' uses unknown metric 'f1'",
        ),
    ],
)
def test_check_reports_each_problem(change, problem):
    spec = dataclasses.replace(_valid_spec(), **change)
    problems = spec.check()
    assert any(problem in p for p in problems), problems


def test_check_reports_duplicate_metrics():
    spec = _valid_spec()
    spec = dataclasses.replace(spec, metrics=(*spec.metrics, Metric("auc", "again")))
    assert "duplicate metric names" in spec.check()


def test_metric_lookup_and_options():
    spec = get_task("jsrt-anatomy")
    assert spec.metric("hd95").higher_is_better is False
    assert spec.metric("dice").per_class is True
    with pytest.raises(KeyError):
        spec.metric("nope")
    assert spec.option("pixel_spacing_mm") == pytest.approx(1.4)
    assert spec.option("missing", 7) == 7


@pytest.mark.parametrize(
    ("size", "channels", "text"),
    [((256, 256), 1, "256x256, grey"), (None, 3, "native, RGB")],
)
def test_input_describe(size, channels, text):
    assert InputSpec(size, channels).describe() == text


@pytest.mark.parametrize("name", sorted(TASKS.names()))
def test_task_info_survives_the_job_file(name):
    # The sandboxed child builds its TaskInfo from the job file instead of the catalogue.
    import json

    from medbench.submission.api import TaskInfo

    spec = get_task(name)
    train = {"epochs": 3, "aug": "lakhani"}
    sent = json.loads(json.dumps(TaskInfo.from_spec(spec).to_json()))
    assert TaskInfo.from_json(sent, train) == TaskInfo.from_spec(spec, train)
