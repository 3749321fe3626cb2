"""``medbench ensemble``: records made from the saved predictions of committed runs.

The toy tasks' committed records (``leaderboards/results/toy-*``) are copied into a scratch
results folder; the ensemble is scored against this machine's prepared answers, like a run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medbench.cli import app
from medbench.ensemble import combine, make_ensemble
from medbench.errors import MedbenchError
from medbench.leaderboard import build_boards
from medbench.leaderboard.comparisons import ensemble_rows
from medbench.leaderboard.transfer import transfer_table
from medbench.results import read_record, seal
from medbench.saved import decode
from medbench.verify import verify_record

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "leaderboards" / "results"
cli = CliRunner()


def copy_task(results: Path, task: str) -> Path:
    shutil.copytree(COMMITTED / task, results / task)
    return results / task


def twin(folder: Path, entry: str, name: str) -> Path:
    """A second record of the same run under another entry name (same saved predictions)."""
    record = json.loads((folder / f"{entry}.seed0.json").read_text())
    record["submission"] = {**record["submission"], "name": name}
    record.pop("record_sha256")
    path = folder / f"{name}.seed0.json"
    path.write_text(json.dumps(seal(record)))
    return path


# --- combining one case --------------------------------------------------------------------------


def test_probabilities_are_weighted_means():
    out = combine("binary", [np.float64(0.2), np.float64(0.8)], np.array([3.0, 1.0]))
    assert out == pytest.approx(0.35)
    rows = [np.array([0.5, 0.3, 0.2]), np.array([0.1, 0.1, 0.8])]
    mixed = combine("multiclass", rows, np.array([1.0, 1.0]))
    assert mixed == pytest.approx([0.3, 0.2, 0.5]) and mixed.sum() == pytest.approx(1.0)


def test_masks_are_voted_at_half_the_weight():
    a = np.zeros((1, 4, 4), bool)
    b = np.zeros((1, 4, 4), bool)
    c = np.zeros((1, 4, 4), bool)
    a[0, 0, :3] = True
    b[0, 0, 1:] = True
    c[0, 0, 2] = True
    voted = combine("multilabel-segmentation", [a, b, c], np.ones(3))
    assert voted[0, 0].tolist() == [False, True, True, False]  # 2 of 3 at columns 1 and 2
    heavy = combine("multilabel-segmentation", [a, b, c], np.array([2.0, 1.0, 0.0]))
    assert np.array_equal(heavy, a)  # two thirds of the weight: a alone decides


def test_instances_are_components_of_the_voted_foreground():
    a = np.zeros((6, 6), np.int32)
    a[0:2, 0:2], a[4:6, 4:6] = 1, 2
    b = np.zeros((6, 6), np.int32)
    b[0:2, 0:3] = 7  # one nucleus, a bit wider
    labels = combine("instance-segmentation", [a, b], np.ones(2))
    assert labels.dtype == np.int32
    assert set(np.unique(labels)) == {0, 1, 2}  # two components, renumbered 1..n
    assert (labels[0:2, 0:3] > 0).all() and (labels[4:6, 4:6] > 0).all()


# --- end to end ----------------------------------------------------------------------------------


def test_ensemble_of_two_identical_runs_is_the_run(tmp_path):
    folder = copy_task(tmp_path / "results", "toy-lesions")
    twin(folder, "lbp-svm", "lbp-svm-again")
    result = cli.invoke(
        app,
        ["ensemble", "same", "lbp-svm", "lbp-svm-again", "--task", "toy-lesions",
         "--results-dir", str(tmp_path / "results")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "2 members" in result.output
    made, run = read_record(folder / "same.seed0.json"), read_record(folder / "lbp-svm.seed0.json")
    for field in ("metrics", "per_class", "operating_points", "per_case"):
        assert made[field] == run[field], field
    assert made["ensemble"]["members"][0]["record_sha256"] == run["record_sha256"]
    assert made["submission"]["path"] is None and made["isolation"]["mode"] == "sandbox"


def test_ensemble_averages_the_members_and_sums_their_costs(tmp_path):
    results = tmp_path / "results"
    folder = copy_task(results, "toy-lesions")
    path = make_ensemble(
        "mix", "toy-lesions", ["cnn", "lbp-svm"], results_dir=results, weights=[1.0, 3.0]
    )
    made = read_record(path)
    members = [read_record(folder / f"{m}.seed0.json") for m in ("cnn", "lbp-svm")]
    ids, values = decode(path.with_name("mix.seed0.predictions.npz"))["test"]
    cnn = dict(zip(*decode(folder / "cnn.seed0.predictions.npz")["test"], strict=True))
    lbp = dict(zip(*decode(folder / "lbp-svm.seed0.predictions.npz")["test"], strict=True))
    expected = [(cnn[c] + 3 * lbp[c]) / 4 for c in ids]
    assert np.allclose(values, expected, rtol=0, atol=1e-12)
    assert made["timings"]["fit_s"] == pytest.approx(
        sum(m["timings"]["fit_s"] for m in members), abs=1e-3
    )
    assert made["train"]["weights"] == [1.0, 3.0]
    assert verify_record(path).status == "verified"


def test_board_shows_the_ensemble_against_its_best_member(tmp_path):
    results = tmp_path / "results"
    copy_task(results, "toy-lesions")
    make_ensemble("pair", "toy-lesions", ["cnn", "deep-features"], results_dir=results)
    (board,) = build_boards(results, tasks=["toy-lesions"])
    (row,) = ensemble_rows(board)
    values = {e.name: e.shown_value("auc") for e in board.ranked}  # over seeds, as shown
    assert row.best == max(["cnn", "deep-features"], key=values.get)
    assert row.delta == pytest.approx(values["pair"] - values[row.best])
    assert 0 <= row.p <= 1
    assert transfer_table(board) is None or transfer_table(board)["ensemble"] is not None


def test_verify_catches_a_changed_member_or_changed_predictions(tmp_path):
    results = tmp_path / "results"
    folder = copy_task(results, "toy-lesions")
    path = make_ensemble("pair", "toy-lesions", ["cnn", "lbp-svm"], results_dir=results)
    member = json.loads((folder / "lbp-svm.seed0.json").read_text())
    member["created"] = "2020-01-01T00:00:00Z"  # re-sealed: a different record
    member.pop("record_sha256")
    (folder / "lbp-svm.seed0.json").write_text(json.dumps(seal(member)))
    found = verify_record(path)
    assert found.status == "differs" and "lbp-svm.seed0.json" in found.detail


def test_ensemble_refuses_bad_input_with_one_line(tmp_path):
    results = tmp_path / "results"
    copy_task(results, "toy-lesions")
    copy_task(results, "toy-anatomy")
    cases = [
        (["only", "cnn"], "at least two members"),
        (["x", "cnn", "nobody"], "no record of member 'nobody'"),
        (["x", "cnn", "lbp-svm", "--weights", "1"], "1 weights for 2 members"),
        (["x", "cnn", "lbp-svm", "--weights", "1", "--weights", "-1"], ">= 0"),
        (["cnn", "cnn", "lbp-svm"], "is the record of a run"),
        (["x", "cnn", str(results / "toy-anatomy" / "dummy.seed0.json")], "not toy-lesions"),
        (["bad/name", "cnn", "lbp-svm"], "ensemble name"),
        (["x", "cnn", str(COMMITTED / "toy-lesions" / "lbp-svm.seed0.json")], "is not in"),
    ]
    for args, message in cases:
        result = cli.invoke(
            app, ["ensemble", *args, "--task", "toy-lesions", "--results-dir", str(results)]
        )
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert not (results / "toy-lesions" / "x.seed0.json").exists()


def test_reproduce_refuses_an_ensemble(tmp_path):
    results = tmp_path / "results"
    copy_task(results, "toy-lesions")
    path = make_ensemble("pair", "toy-lesions", ["cnn", "lbp-svm"], results_dir=results)
    result = cli.invoke(app, ["reproduce", str(path)])
    assert result.exit_code != 0 and "is an ensemble" in result.output


def test_segmentation_ensemble_with_all_weight_on_one_member_is_that_member(tmp_path):
    results = tmp_path / "results"
    folder = copy_task(results, "toy-anatomy")
    twin(folder, "dummy", "dummy-again")
    path = make_ensemble(
        "seg", "toy-anatomy", ["dummy", "dummy-again"], results_dir=results, weights=[1.0, 0.0]
    )
    made, run = read_record(path), read_record(folder / "dummy.seed0.json")
    assert made["metrics"] == run["metrics"] and made["per_case"] == run["per_case"]


@pytest.mark.mirror
def test_real_task_ensemble_matches_the_transfer_tables_mean(tmp_path, mirror):
    # pneumoniamnist: cnn + cnn+lakhani, the Lakhani table's "ensemble of the pretrained runs".
    results = tmp_path / "results"
    copy_task(results, "pneumoniamnist")
    (before,) = build_boards(results, tasks=["pneumoniamnist"])
    computed = transfer_table(before)["ensemble"]
    path = make_ensemble(
        "cnn-ensemble", "pneumoniamnist", ["cnn", "cnn+lakhani"], results_dir=results
    )
    made = read_record(path)
    assert made["metrics"]["auc"]["value"] == pytest.approx(computed.value, abs=1e-12)
    (after,) = build_boards(results, tasks=["pneumoniamnist"])
    assert transfer_table(after)["ensemble"].entry == "cnn-ensemble"
    with pytest.raises(MedbenchError, match="cannot be its own member"):
        make_ensemble(
            "cnn-ensemble", "pneumoniamnist", ["cnn", "cnn-ensemble"], results_dir=results
        )
