"""`medbench run` end to end on the toy tasks: records, failure isolation, hidden labels, skip rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medbench.cli import app
from medbench.results import read_record, record_path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "submissions"
runner = CliRunner()


def run_cli(*args: str):
    return runner.invoke(app, ["run", *args, "--quiet"])


def record(results: Path, task: str, name: str, seed: int = 0) -> dict:
    return read_record(record_path(results, task, name, seed))


def test_dummy_runs_every_toy_task_and_writes_valid_records(tmp_path):
    result = run_cli(
        str(ROOT / "submissions" / "dummy"),
        "--task",
        "toy-lesions",
        "--task",
        "toy-anatomy",
        "--results-dir",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    lesions = record(tmp_path, "toy-lesions", "dummy")
    assert lesions["status"] == "ok"
    assert lesions["metrics"]["auc"]["value"] == pytest.approx(0.5)
    assert lesions["task"]["n_test"] == len(lesions["per_case"]["case_id"]) == 124
    assert set(lesions["operating_points"]) == {"youden"}
    anatomy = record(tmp_path, "toy-anatomy", "dummy")
    assert anatomy["metrics"]["dice"]["value"] == 0.0  # empty masks against non-empty truth
    assert set(anatomy["per_class"]) == {"disc", "bar", "spots"}
    assert anatomy["gallery"]["file"] == "dummy.seed0.worst.png"
    for r in (lesions, anatomy):
        assert r["submission"]["content_sha256"] and r["task"]["data_sha256"]
        assert r["environment"]["medbench"] and r["device"] == "cpu"
        # every phase of a run is timed; the child's phases fit inside its wall time
        timings = r["timings"]
        phases = ("child_start_s", "setup_s", "fit_s", "predict_s", "output_s")
        assert {"prepare_s", "verify_s", "child_wall_s", "score_s", "gallery_s", "total_s"} <= set(
            timings
        ) and set(phases) <= set(timings)
        assert sum(timings[k] for k in phases) <= timings["child_wall_s"] + 0.01
        assert timings["child_wall_s"] <= timings["total_s"]


def test_an_identical_run_is_skipped_unless_forced(tmp_path):
    args = (
        str(ROOT / "submissions" / "dummy"),
        "--task",
        "toy-lesions",
        "--results-dir",
        str(tmp_path),
    )
    assert run_cli(*args).exit_code == 0
    first = record(tmp_path, "toy-lesions", "dummy")
    again = run_cli(*args)
    assert "skipped" in again.output
    assert record(tmp_path, "toy-lesions", "dummy")["created"] == first["created"]
    forced = run_cli(*args, "--force")
    assert forced.exit_code == 0 and "skipped" not in forced.output


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("wrong-shape", "must have shape (124,)"),
        ("missing-case", "returned 123 predictions for 124 test cases"),
        ("nan", "NaN or infinite"),
        ("fit-raises", "ValueError: boom in fit"),
        ("killed", "killed by signal SIGKILL"),
    ],
)
def test_contract_violations_give_failed_records_with_the_reason(tmp_path, fixture, reason):
    result = run_cli(str(FIXTURES / fixture), "--results-dir", str(tmp_path))
    assert result.exit_code == 1
    rec = record(tmp_path, "toy-lesions", fixture)
    assert rec["status"] == "failed"
    assert reason in rec["error"]["message"]
    assert rec["metrics"] == {}


def test_a_failed_run_does_not_stop_the_others(tmp_path):
    result = run_cli(
        str(FIXTURES / "fit-raises"),
        str(ROOT / "submissions" / "dummy"),
        "--task",
        "toy-lesions",
        "--results-dir",
        str(tmp_path),
    )
    assert result.exit_code == 1
    assert record(tmp_path, "toy-lesions", "fit-raises")["status"] == "failed"
    assert record(tmp_path, "toy-lesions", "dummy")["status"] == "ok"


def test_the_log_tail_of_a_failed_run_is_in_its_record(tmp_path):
    run_cli(str(FIXTURES / "fit-raises"), "--results-dir", str(tmp_path))
    tail = record(tmp_path, "toy-lesions", "fit-raises")["error"]["log_tail"]
    assert "Traceback" in tail and "boom in fit" in tail


def test_a_hanging_submission_times_out(tmp_path):
    result = run_cli(str(FIXTURES / "hangs"), "--timeout", "3", "--results-dir", str(tmp_path))
    assert result.exit_code == 1
    rec = record(tmp_path, "toy-lesions", "hangs")
    assert rec["status"] == "failed" and "timed out after 3 s" in rec["error"]["message"]
    assert rec["timings"]["total_s"] < 60


def test_the_test_set_exposes_no_labels(tmp_path):
    # The fixture raises if any of the obvious ways reaches a label; a clean run proves none did.
    result = run_cli(str(FIXTURES / "peeks"), "--results-dir", str(tmp_path))
    rec = record(tmp_path, "toy-lesions", "peeks")
    assert rec["status"] == "ok", rec["error"]
    assert result.exit_code == 0


def test_unknown_task_is_refused_with_suggestions(tmp_path):
    result = run_cli(
        str(ROOT / "submissions" / "dummy"), "--task", "toy-lesion", "--results-dir", str(tmp_path)
    )
    assert result.exit_code == 1
    assert "toy-lesions" in result.output


def test_record_json_is_sealed(tmp_path):
    run_cli(
        str(ROOT / "submissions" / "dummy"), "--task", "toy-lesions", "--results-dir", str(tmp_path)
    )
    path = record_path(tmp_path, "toy-lesions", "dummy", 0)
    data = json.loads(path.read_text())
    data["metrics"]["auc"]["value"] = 0.99
    path.write_text(json.dumps(data))
    with pytest.raises(Exception, match="does not match its record_sha256"):
        read_record(path)


def test_a_variant_is_its_own_entry_beside_the_submission(tmp_path):
    cnn = str(ROOT / "submissions" / "cnn")
    args = ["--task", "toy-lesions", "--epochs", "1", "--results-dir", str(tmp_path / "r")]
    assert run_cli(cnn, *args).exit_code == 0
    scratch = ["--variant", "scratch", "--set", "backbone=resnet18", "--set", "pretrained=false"]
    result = run_cli(cnn, *args, *scratch)
    assert result.exit_code == 0, result.output
    assert "cnn+scratch/toy-lesions/seed0" in result.output
    base, variant = (
        record(tmp_path / "r", "toy-lesions", "cnn"),
        record(tmp_path / "r", "toy-lesions", "cnn+scratch"),
    )
    assert variant["submission"]["variant"] == "scratch"
    assert (
        variant["submission"]["folder_name"] == "cnn"
        and variant["submission"]["name"] == "cnn+scratch"
    )
    assert (
        variant["train"]["backbone"] == "resnet18"
        and base["train"]["backbone"] == "efficientnet_lite0"
    )
    # The pretrained run states its weights, the scratch one none.
    from medbench.pretrained import weights_info

    assert base["notes"]["weights_sha256"] == weights_info("efficientnet_lite0")["weights_sha256"]
    assert "weights_sha256" not in variant["notes"]
    board = runner.invoke(
        app, ["leaderboard", "--results", str(tmp_path / "r"), "--out", str(tmp_path / "lb")]
    )
    assert board.exit_code == 0, board.output
    page = (tmp_path / "lb" / "toy-lesions.md").read_text()
    assert "[cnn+scratch]" in page and "[cnn]" in page
    # A bad label is one clear line.
    bad = run_cli(cnn, *args, "--variant", "a/b")
    assert bad.exit_code == 1 and "--variant may hold only letters" in bad.output
