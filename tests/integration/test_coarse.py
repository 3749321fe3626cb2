"""Fine-to-coarse scoring (Esteva et al. 2017): ``messidor2-grading`` runs on ``messidor2-referable``."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medbench.cli import app
from medbench.coarse import coarse_predictions, coarse_views, view_problems
from medbench.leaderboard import build_boards
from medbench.leaderboard.comparisons import coarse_rows
from medbench.results import read_record, seal
from medbench.saved import decode
from medbench.tasks import all_tasks, get_task
from medbench.verify import verify_record

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "leaderboards" / "results"
cli = CliRunner()


def test_every_declared_view_is_valid():
    declared = [t for t in all_tasks() if t.coarse_of is not None]
    assert [t.name for t in declared] == ["messidor2-referable"]
    for coarse in declared:
        fine = get_task(coarse.coarse_of[0])
        assert view_problems(coarse, fine, coarse.coarse_of[1]) == []
        assert [c.name for c, _ in coarse_views(fine)] == [coarse.name]
    grading = get_task("messidor2-grading")
    assert [grading.classes[c] for c in coarse_views(grading)[0][1]] == [
        "moderate", "severe", "proliferative",
    ]  # fmt: skip
    assert view_problems(get_task("pneumoniamnist"), grading, (2, 3, 4))  # splits differ
    assert view_problems(get_task("messidor2-referable"), grading, (2, 9))  # no class 9


def test_coarse_probability_is_the_sum_of_the_fine_classes():
    probs = np.array([[0.1, 0.2, 0.3, 0.25, 0.15], [0.7, 0.2, 0.05, 0.05, 0.0]])
    splits = {s: (("a", "b"), probs) for s in ("test", "val")}
    out = coarse_predictions(splits, (2, 3, 4))
    assert out["test"][0] == ("a", "b")
    assert np.allclose(out["test"][1], [0.7, 0.1])


@pytest.fixture
def results(tmp_path, mirror):
    results = tmp_path / "results"
    for task in ("messidor2-grading", "messidor2-referable"):
        shutil.copytree(COMMITTED / task, results / task)
    for p in (results / "messidor2-referable").glob("*@messidor2-grading.*"):
        p.unlink()  # derive them afresh
    return results


@pytest.mark.mirror
def test_derived_record_equals_medbench_score_of_the_summed_probabilities(results, tmp_path):
    fine = results / "messidor2-grading" / "lbp-svm.seed0.json"
    out = cli.invoke(app, ["coarse", str(fine)])
    assert out.exit_code == 0, out.output
    derived = results / "messidor2-referable" / "lbp-svm@messidor2-grading.seed0.json"
    record = read_record(derived)
    assert record["derived"]["fine_record_sha256"] == read_record(fine)["record_sha256"]
    assert (
        record["submission"]["content_sha256"] == read_record(fine)["submission"]["content_sha256"]
    )
    # the same numbers from the uploaded-file path: a CSV of P(grade >= 2) per case
    saved = decode(fine.with_name("lbp-svm.seed0.predictions.npz"))
    files = {}
    for split in ("test", "val"):
        ids, values = saved[split]
        files[split] = tmp_path / f"{split}.csv"
        with files[split].open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["case_id", "score"])
            for c, v in zip(ids, np.asarray(values)[:, 2:].sum(axis=1), strict=True):
                writer.writerow([c, repr(float(v))])
    scored = cli.invoke(
        app, ["score", "messidor2-referable", str(files["test"]), "--val-predictions",
              str(files["val"]), "--format", "json"],
    )  # fmt: skip
    assert scored.exit_code == 0, scored.output
    summary = json.loads(scored.output)["summary"]
    for name, metric in record["metrics"].items():
        assert summary[name]["value"] == pytest.approx(metric["value"], abs=1e-9), name
    assert verify_record(derived).status == "verified"


@pytest.mark.mirror
def test_the_coarse_board_answers_estevas_question(results):
    for name in ("cnn", "lbp-svm"):
        assert (
            cli.invoke(
                app, ["coarse", str(results / "messidor2-grading" / f"{name}.seed0.json")]
            ).exit_code
            == 0
        )
    (board,) = build_boards(results, tasks=["messidor2-referable"])
    rows = {r.base: r for r in coarse_rows(board)}
    assert set(rows) == {"cnn", "lbp-svm"}
    names = [r.entry.name for r in board.rows]
    assert "cnn@messidor2-grading" in names and "cnn" in names  # both ranked, once each
    (grading,) = build_boards(results, tasks=["messidor2-grading"])
    assert not any("@" in r.entry.name for r in grading.rows)  # nothing counted twice
    cnn = rows["cnn"]
    assert cnn.delta == pytest.approx(cnn.fine.value - cnn.coarse.value) and 0 <= cnn.p <= 1


@pytest.mark.mirror
def test_verify_catches_a_changed_fine_record(results):
    fine = results / "messidor2-grading" / "dummy.seed0.json"
    assert cli.invoke(app, ["coarse", str(fine)]).exit_code == 0
    record = json.loads(fine.read_text())
    record["created"] = "2020-01-01T00:00:00Z"
    record.pop("record_sha256")
    fine.write_text(json.dumps(seal(record)))
    found = verify_record(results / "messidor2-referable" / "dummy@messidor2-grading.seed0.json")
    assert found.status == "differs" and "dummy.seed0.json" in found.detail


def test_coarse_refuses_records_without_a_view(tmp_path):
    shutil.copytree(COMMITTED / "toy-lesions", tmp_path / "toy-lesions")
    out = cli.invoke(app, ["coarse", str(tmp_path / "toy-lesions" / "cnn.seed0.json")])
    assert out.exit_code != 0 and "no task is a coarse view of toy-lesions" in out.output


def test_the_runner_scores_a_fine_run_on_its_views_and_keeps_the_run_if_that_fails(
    monkeypatch, tmp_path
):
    import medbench.coarse as coarse
    from medbench.runner import Outcome, Run, _derive_coarse

    run = Run(tmp_path / "sub", "messidor2-grading", 0)
    made = tmp_path / "x@messidor2-grading.seed0.json"
    monkeypatch.setattr(coarse, "derive", lambda path: [made])
    ok = Outcome(run, "ok", {}, tmp_path / "x.seed0.json")
    _derive_coarse(ok)
    assert ok.derived == [made] and ok.notes == []

    def broken(path):
        raise coarse.MedbenchError("the data of messidor2-referable is not here")

    monkeypatch.setattr(coarse, "derive", broken)
    failed = Outcome(run, "ok", {}, tmp_path / "x.seed0.json")
    _derive_coarse(failed)
    assert failed.status == "ok" and failed.derived == []
    assert failed.notes == [
        "not scored on its coarse views: the data of messidor2-referable is not here"
    ]
    other = Outcome(Run(tmp_path / "sub", "toy-lesions", 0), "ok", {}, tmp_path / "y.json")
    monkeypatch.setattr(coarse, "derive", lambda path: pytest.fail("toy-lesions has no view"))
    _derive_coarse(other)


@pytest.mark.mirror
def test_coarse_refuses_an_ensemble_record(results):
    out = cli.invoke(
        app, ["coarse", str(results / "messidor2-grading" / "ensemble-models.seed0.json")]
    )
    assert out.exit_code != 0 and "is an ensemble" in out.output
