"""``medbench rescore``: a record brought to a new task version from what it kept, without a run."""

from __future__ import annotations

import dataclasses

import pytest
from typer.testing import CliRunner

from medbench.cli import app
from medbench.results import read_record, record_path
from medbench.tasks import TASKS, get_task
from medbench.tasks.spec import Metric

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
DUMMY = ROOT / "submissions" / "lbp-svm"
cli = CliRunner()


@pytest.fixture
def record(tmp_path):
    results = tmp_path / "results"
    result = cli.invoke(
        app, ["run", str(DUMMY), "--task", "toy-lesions", "--quiet", "--results-dir", str(results)]
    )
    assert result.exit_code == 0, result.output
    return record_path(results, "toy-lesions", "lbp-svm", 0)


@pytest.fixture
def next_version(monkeypatch):
    """toy-lesions, version + 1, with one metric more (MedMNIST's ACC at 0.5)."""
    spec = get_task("toy-lesions")
    newer = dataclasses.replace(
        spec, version=spec.version + 1, metrics=(*spec.metrics, Metric("accuracy@0.5"))
    )
    monkeypatch.setitem(TASKS._items, "toy-lesions", newer)
    return newer


def test_rescore_from_saved_predictions_adds_the_new_metric(record, next_version):
    before = read_record(record)
    result = cli.invoke(app, ["rescore", str(record)])
    assert result.exit_code == 0, result.output
    assert "rescored" in result.output and "saved predictions" in result.output
    after = read_record(record)  # sealed, in place
    assert after["task"]["version"] == next_version.version
    assert after["rescored"]["from_record_sha256"] == before["record_sha256"]
    assert after["rescored"]["from_task_version"] == before["task"]["version"]
    for name, value in before["metrics"].items():  # nothing else moved
        assert after["metrics"][name] == value
    assert 0.0 < after["metrics"]["accuracy@0.5"]["value"] < 1.0
    verified = cli.invoke(app, ["verify", str(record)])
    assert verified.exit_code == 0, verified.output  # the saved predictions give every number
    again = cli.invoke(app, ["rescore", str(record)])
    assert again.exit_code == 0 and "current" in again.output


def test_rescore_from_per_case_columns_names_what_it_cannot_compute(record, next_version):
    before = read_record(record)
    record.with_name("lbp-svm.seed0.predictions.npz").unlink()
    result = cli.invoke(app, ["rescore", str(record)])
    assert result.exit_code == 0, result.output
    assert "per-case columns" in result.output
    assert "not computable from them: accuracy@0.5" in result.output
    after = read_record(record)
    assert after["task"]["version"] == next_version.version
    assert after["metrics"] == before["metrics"]  # every old metric recomputed the same
    assert after["operating_points"] == before["operating_points"]


def test_rescore_refuses_records_of_other_data(record, next_version):
    data = read_record(record)
    data["task"]["data_sha256"] = "0" * 64
    from medbench.results import write_record

    write_record(record, data)
    result = cli.invoke(app, ["rescore", str(record)])
    assert result.exit_code == 1
    assert "prepared data differs from the record's: re-run it" in result.output
