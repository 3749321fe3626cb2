"""`medbench reproduce RECORD`: the same content, task version and seed on a CPU give every metric
again with a difference of exactly 0; a record whose submission changed since is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import medbench.reproduce
from medbench.cli import app
from medbench.results import read_record, record_path

ROOT = Path(__file__).resolve().parents[2]
cli = CliRunner()


def run_cli(*args: str):
    # One thread: an epoch of the U-Net takes about a second on a shared 2-core CPU, where two
    # threads contending with other work can take twenty times longer. The record keeps the
    # thread count, and the reproduction must use it (results depend on it).
    return cli.invoke(app, ["run", *args, "--quiet", "--device", "cpu", "--threads", "1"])


@pytest.fixture
def spy(monkeypatch):
    """Keep what `medbench reproduce` computed (new record, differences, tolerance)."""
    seen: list[tuple] = []
    real = medbench.reproduce.reproduce

    def wrapper(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(medbench.reproduce, "reproduce", wrapper)
    return seen


@pytest.mark.parametrize(
    ("submission", "extra"),
    [("dummy", ()), ("unet", ("--epochs", "2"))],
)
def test_reproducing_a_cpu_run_gives_every_metric_exactly(tmp_path, spy, submission, extra):
    folder = ROOT / "submissions" / submission
    result = run_cli(str(folder), "--task", "toy-anatomy", *extra, "--results-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    path = record_path(tmp_path, "toy-anatomy", submission, 0)
    record = read_record(path)

    again = cli.invoke(app, ["reproduce", str(path)])
    assert again.exit_code == 0, again.output
    [(new, rows, tolerance)] = spy
    assert tolerance == 0.0
    assert [r.metric for r in rows] == list(record["metrics"])
    defined = [r for r in rows if r.recorded is not None]
    assert defined, "no metric was defined: nothing was compared"
    for r in defined:
        assert r.within and r.difference == 0.0, r
    for r in rows:  # undefined (e.g. HD95 of empty masks) in the record: undefined again
        assert r.within and (r.recorded is None) == (r.reproduced is None), r
    assert new["metrics"] == record["metrics"]
    assert new["per_case"] == record["per_case"]
    assert "differs" not in again.output
    assert new["environment"]["cpu_threads"] == record["environment"]["cpu_threads"] == 1
    if submission == "unet":
        assert record["train"]["epochs"] == 2 == new["train"]["epochs"]


def test_a_changed_submission_folder_is_refused_by_content_hash(tmp_path):
    folder = tmp_path / "dummy"
    shutil.copytree(ROOT / "submissions" / "dummy", folder)
    results = tmp_path / "results"
    assert (
        run_cli(str(folder), "--task", "toy-lesions", "--results-dir", str(results)).exit_code == 0
    )
    path = record_path(results, "toy-lesions", "dummy", 0)
    assert read_record(path)["submission"]["path"] == str(folder)

    model = folder / "model.py"
    model.write_text(model.read_text() + "\n# tuned after the run\n")
    refused = cli.invoke(app, ["reproduce", str(path)])
    assert refused.exit_code == 1
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "content hash" in lines[0]
    assert str(folder) in lines[0] and str(path) in lines[0]


def test_a_hand_edited_record_is_not_reproduced(tmp_path):
    results = tmp_path / "results"
    dummy = ROOT / "submissions" / "dummy"
    assert (
        run_cli(str(dummy), "--task", "toy-lesions", "--results-dir", str(results)).exit_code == 0
    )
    path = record_path(results, "toy-lesions", "dummy", 0)
    data = json.loads(path.read_text())
    data["metrics"]["auc"]["value"] = 0.97
    path.write_text(json.dumps(data))
    refused = cli.invoke(app, ["reproduce", str(path)])
    assert refused.exit_code == 1
    assert "RecordError" in refused.stderr and "record_sha256" in refused.stderr


def test_a_training_fraction_run_is_reproduced_on_the_same_subset(tmp_path, spy):
    folder = ROOT / "submissions" / "lbp-svm"
    result = run_cli(
        str(folder),
        "--task",
        "toy-lesions",
        "--train-fraction",
        "0.5",
        "--results-dir",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    path = tmp_path / "toy-lesions" / "lbp-svm.frac0.5.seed0.json"
    record = read_record(path)
    again = cli.invoke(app, ["reproduce", str(path)])
    assert again.exit_code == 0, again.output
    [(new, rows, _)] = spy
    assert new["train_subset"] == record["train_subset"]
    assert new["metrics"] == record["metrics"] and all(r.within for r in rows)
