"""The ``medbench tasks`` and ``medbench data`` commands, driven end to end with CliRunner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from medbench.cli import app
from medbench.tasks import TASKS

runner = CliRunner()

TASK_KEYS = {
    "name",
    "kind",
    "classes",
    "input",
    "primary_metric",
    "higher_is_better",
    "version",
    "data",
    "data_detail",
    "modality",
}
STATES = {"prepared", "available", "generated", "absent"}


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """MEDBENCH_DATA pointing at an empty folder: no real data set is found."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("MEDBENCH_DATA", str(empty))
    return empty


def test_tasks_lists_every_task_in_a_wide_terminal(monkeypatch, no_data):
    monkeypatch.setenv("COLUMNS", "200")
    result = invoke("tasks")
    assert result.exit_code == 0, result.output
    for name in TASKS.names():
        assert name in result.output


def test_tasks_lists_every_task_in_80_columns(monkeypatch, no_data):
    monkeypatch.setenv("COLUMNS", "80")
    result = invoke("tasks")
    assert result.exit_code == 0, result.output
    missing = [n for n in TASKS.names() if n not in result.output]
    assert missing == []


def test_tasks_json(no_data):
    result = invoke("tasks", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == len(TASKS)
    assert [r["name"] for r in rows] == TASKS.names()
    for row in rows:
        assert set(row) == TASK_KEYS
        assert row["data"] in STATES
    by_name = {r["name"]: r for r in rows}
    assert by_name["jsrt-anatomy"]["classes"] == ["lungs", "heart", "clavicles"]
    assert by_name["jsrt-anatomy"]["input"] == "256x256, grey"
    assert by_name["isbi2012-membranes"]["primary_metric"] == "v_rand"
    assert by_name["toy-anatomy"]["data"] in {"generated", "prepared"}


def test_tasks_refuses_an_unknown_format():
    result = invoke("tasks", "--format", "yaml")
    assert result.exit_code == 1
    assert "--format must be table or json; got 'yaml'" in result.output


def test_data_status_json(no_data):
    result = invoke("data", "status", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["task"] for r in rows] == TASKS.names()
    assert all(set(r) == {"task", "state", "detail"} and r["state"] in STATES for r in rows)
    by_task = {r["task"]: r for r in rows}
    assert by_task["jsrt-anatomy"]["state"] in {"absent", "prepared"}
    assert by_task["retinamnist"]["state"] in {"absent", "prepared"}
    if by_task["retinamnist"]["state"] == "absent":
        assert by_task["retinamnist"]["detail"] == "downloads on prepare"


def test_data_status_table_says_where_to_get_data(no_data, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    result = invoke("data", "status")
    assert result.exit_code == 0, result.output
    assert "celltrackingchallenge.net" in result.output


@pytest.mark.mirror
def test_data_status_with_the_mirror(mirror, monkeypatch):
    monkeypatch.setenv("MEDBENCH_DATA", str(mirror))
    result = invoke("data", "status", "--format", "json")
    assert result.exit_code == 0, result.output
    by_task = {r["task"]: r for r in json.loads(result.stdout)}
    tb = by_task["tb-cxr"]
    assert tb["state"] == "absent"
    assert "labels only" in tb["detail"] and str(mirror / "tb-nlm") in tb["detail"]
    u373 = by_task["ctc-u373"]
    assert u373["state"] == "absent"
    assert "celltrackingchallenge.net" in u373["detail"] and "PhC-C2DH-U373" in u373["detail"]
    for name in ("jsrt-anatomy", "isbi2012-membranes", "messidor2-grading", "dsb2018-nuclei"):
        assert by_task[name]["state"] in {"available", "prepared"}, by_task[name]


def test_data_prepare_toy(fresh_home):
    result = invoke("data", "prepare", "--quiet", "toy-anatomy")
    assert result.exit_code == 0, result.output
    assert "ready toy-anatomy: 168/42/70 train/val/test from generated" in result.output
    assert (fresh_home / "prepared" / "toy-anatomy-v1" / "manifest.json").is_file()
    # Now it is prepared, and status says so.
    status = json.loads(invoke("data", "status", "--format", "json").stdout)
    assert {r["task"]: r["state"] for r in status}["toy-anatomy"] == "prepared"


def test_data_prepare_unknown_task():
    result = invoke("data", "prepare", "nope")
    assert result.exit_code == 1
    assert "UnknownNameError: unknown task 'nope'" in result.output
    assert "known: breastmnist, ctc-hela" in result.output


def test_data_prepare_misspelt_task_suggests_the_name():
    result = invoke("data", "prepare", "toy-anatomi")
    assert result.exit_code == 1
    assert "did you mean 'toy-anatomy'" in result.output


def test_data_prepare_without_a_task():
    result = invoke("data", "prepare")
    assert result.exit_code == 1
    assert "name at least one task, or use --all" in result.output


def test_data_prepare_absent_data_explains(no_data, fresh_home):
    result = invoke("data", "prepare", "-q", "isbi2012-membranes")
    assert result.exit_code == 1
    assert "DataNotFoundError" in result.output and "train-volume.tif" in result.output
    assert not (fresh_home / "prepared" / "isbi2012-membranes-v1").exists()


def test_data_prepare_from_a_folder(tmp_path, fresh_home):
    import numpy as np
    import tifffile

    rng = np.random.default_rng(0)
    tifffile.imwrite(
        tmp_path / "train-volume.tif", rng.integers(0, 256, (30, 16, 16), dtype=np.uint8)
    )
    tifffile.imwrite(tmp_path / "train-labels.tif", np.full((30, 16, 16), 255, np.uint8))
    result = invoke("data", "prepare", "-q", "--from", str(tmp_path), "isbi2012-membranes")
    assert result.exit_code == 0, result.output
    assert "ready isbi2012-membranes: 20/5/5 train/val/test from official" in result.output
