"""``medbench run --train-fraction``: runs on nested training subsets, and their curves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medbench.cli import app
from medbench.data.prepare import prepare
from medbench.data.subsets import train_subset
from medbench.leaderboard import build_boards, publish
from medbench.results import read_record
from medbench.tasks import get_task

ROOT = Path(__file__).resolve().parents[2]
COUNTS = ROOT / "tests" / "fixtures" / "submissions" / "counts-train"
cli = CliRunner()


def run(results: Path, *extra: str) -> str:
    result = cli.invoke(
        app,
        ["run", str(COUNTS), "--task", "toy-lesions", "--quiet", "--results-dir", str(results),
         *extra],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def test_the_child_trains_on_the_subset_and_the_record_says_so(tmp_path):
    results = tmp_path / "results"
    output = run(results, "--train-fraction", "0.1,0.5", "--train-fraction", "1")
    assert "seed0/train0.1" in output and "seed0/train0.5" in output
    spec = get_task("toy-lesions")
    train = prepare(spec).split("train")
    folder = results / "toy-lesions"
    full = read_record(folder / "counts-train.seed0.json")
    assert "train_subset" not in full and full["notes"]["n_train"] == str(len(train.case_ids))
    seen = []
    for fraction in (0.1, 0.5):
        record = read_record(folder / f"counts-train.frac{fraction:g}.seed0.json")
        expected = train_subset(spec, train.cases, train.targets, fraction)
        labels = train.targets[expected.indices]
        assert record["train_subset"]["fraction"] == fraction
        assert record["train_subset"]["sha256"] == expected.sha256
        assert (
            record["notes"]["n_train"] == record["notes"]["n_images"] == str(len(expected.case_ids))
        )
        assert record["notes"]["n_positive"] == str(int((labels == 1).sum()))
        assert record["task"]["n_test"] == full["task"]["n_test"]  # test never changes
        seen.append(set(expected.case_ids))
    assert seen[0] < seen[1]
    again = run(results, "--train-fraction", "0.1")
    assert "skipped" in again or "already done" in again  # the same run is not repeated


def test_partial_runs_are_curves_not_board_entries(tmp_path):
    results = tmp_path / "results"
    run(results, "--train-fraction", "0.25,1")
    (board,) = build_boards(results, tasks=["toy-lesions"])
    assert [r.entry.name for r in board.rows] == ["counts-train"]  # one entry: the full run
    (curve,) = board.efficiency.curves
    assert [p.fraction for p in curve.points] == [0.25, 1.0]
    assert curve.points[1].value == board.rows[0].entry.value("auc")
    files = publish(results, tmp_path / "out", format="json")
    data = json.loads(files[0].read_text())
    assert [p["fraction"] for p in data["data_efficiency"][0]["points"]] == [0.25, 1.0]
    page = publish(results, tmp_path / "md")[0].read_text()
    assert "## Data efficiency" in page and "25 % (n = " in page


def test_a_bad_fraction_is_one_error_line(tmp_path):
    for bad, said in (("0", "(0, 1]"), ("2", "(0, 1]"), ("half", "'half'")):
        result = cli.invoke(
            app, ["run", str(COUNTS), "--task", "toy-lesions", "--train-fraction", bad,
                  "--results-dir", str(tmp_path)],
        )  # fmt: skip
        assert result.exit_code != 0 and said in result.output, result.output
        assert "Traceback" not in result.output
    assert not any(tmp_path.rglob("*.json"))


@pytest.mark.mirror
def test_a_real_task_subset_keeps_each_class_share(tmp_path, mirror):
    # breastmnist (MedMNIST v2): a quarter of its training images, each class rounded alone.
    results = tmp_path / "results"
    result = cli.invoke(
        app,
        ["run", str(ROOT / "submissions" / "lbp-svm"), "--task", "breastmnist", "--quiet",
         "--train-fraction", "0.25", "--results-dir", str(results)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = read_record(results / "breastmnist" / "lbp-svm.frac0.25.seed0.json")
    train = prepare(get_task("breastmnist")).split("train")
    labels = np.asarray(train.targets).reshape(-1)
    expected = sum(int(np.floor(0.25 * (labels == c).sum() + 0.5)) for c in (0, 1))
    assert record["train_subset"]["n"] == expected and record["train_subset"]["of"] == len(labels)
    assert record["status"] == "ok" and 0.5 < record["metrics"]["auc"]["value"] <= 1
