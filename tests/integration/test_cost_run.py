"""`medbench run` records what a run cost, and draws its gallery from val when asked (toy tasks)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medbench.cli import app
from medbench.results import read_record, record_path
from medbench.saved import decode, predictions_path
from medbench.tasks import get_task
from medbench.tasks.splits import load_split

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "submissions"
runner = CliRunner()


def run_cli(*args: str):
    return runner.invoke(app, ["run", *args, "--quiet"])


def split_ids(task: str, split: str) -> set[str]:
    frame = load_split(get_task(task))
    return set(frame.loc[frame["split"] == split, "case_id"])


def unet_params(width: int, in_ch: int = 1, out_ch: int = 3, depth: int = 4) -> int:
    """submissions/unet's UNetModel counted by hand: 3x3 convolutions without bias, each with a
    BatchNorm (weight and bias), 2x2 transposed convolutions with bias, a 1x1 head with bias."""

    def double_conv(c_in: int, c_out: int) -> int:
        return c_in * c_out * 9 + 2 * c_out + c_out * c_out * 9 + 2 * c_out

    widths = [width * 2**i for i in range(depth + 1)]
    total = double_conv(in_ch, widths[0])
    total += sum(double_conv(widths[i], widths[i + 1]) for i in range(depth))
    total += sum(widths[i + 1] * widths[i] * 4 + widths[i] for i in range(depth))
    total += sum(double_conv(2 * widths[i], widths[i]) for i in range(depth))
    return total + widths[0] * out_ch + out_ch


def test_a_torch_run_reports_its_cost_and_a_val_gallery_shows_val_cases(tmp_path):
    result = run_cli(
        str(ROOT / "submissions" / "unet"),
        "--task", "toy-anatomy", "--set", "epochs=1", "--set", "base_width=4",
        "--gallery-split", "val", "--results-dir", str(tmp_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rec = read_record(record_path(tmp_path, "toy-anatomy", "unet", 0))
    cost = rec["cost"]
    # reported by the child: the counts of the trained model, at the task's 64 x 64 input
    assert cost["params"] == cost["trainable_params"] == unet_params(4) == 122_031
    assert cost["flops_input"] == [64, 64] and cost["flops_input_note"] == "the task's input size"
    # the first 3x3 convolution alone: 2 * 4 * 1 * 9 * 64 * 64 FLOPs; the whole net more
    assert cost["flops_per_image"] > 2 * 4 * 9 * 64 * 64
    # measured around the child, and derived from the record's own timings
    timings = rec["timings"]
    assert cost["fit_s"] == timings["fit_s"] and cost["predict_s"] == timings["predict_s"]
    assert cost["predict_s_per_case"] == pytest.approx(timings["predict_s"] / 70, abs=1e-6)
    assert cost["device_hours"] == pytest.approx(timings["child_wall_s"] / 3600, abs=1e-6)
    assert cost["device"] == rec["device_name"] == "cpu"
    assert cost["peak_memory_mb"] == rec["peak_memory_mb"] and cost["peak_memory_mb"] > 0

    gallery = rec["gallery"]
    assert gallery["split"] == "val" and gallery["metric"] == "dice"
    assert len(gallery["cases"]) == 4
    assert set(gallery["cases"]) <= split_ids("toy-anatomy", "val")
    assert not set(gallery["cases"]) & split_ids("toy-anatomy", "test")
    png = (tmp_path / "toy-anatomy" / gallery["file"]).read_bytes()
    assert hashlib.sha256(png).hexdigest() == gallery["sha256"]
    saved = decode(predictions_path(record_path(tmp_path, "toy-anatomy", "unet", 0)))
    assert set(saved) == {"test", "val"}  # the val predictions the gallery drew are kept


def test_the_gallery_split_is_part_of_the_run(tmp_path):
    args = (str(ROOT / "submissions" / "dummy"), "--task", "toy-anatomy",
            "--results-dir", str(tmp_path))  # fmt: skip
    path = record_path(tmp_path, "toy-anatomy", "dummy", 0)
    assert run_cli(*args, "--gallery-split", "val").exit_code == 0
    val = read_record(path)
    assert val["gallery"]["split"] == "val"
    assert set(val["gallery"]["cases"]) <= split_ids("toy-anatomy", "val")
    assert "skipped" in run_cli(*args, "--gallery-split", "val").output
    # the default (the task states none: test) is another run, not the recorded one
    again = run_cli(*args)
    assert again.exit_code == 0 and "skipped" not in again.output
    test = read_record(path)
    assert test["gallery"]["split"] == "test"
    assert set(test["gallery"]["cases"]) <= split_ids("toy-anatomy", "test")
    # a model that is not torch states no counts: "not reported", the times are still there
    assert test["cost"]["params"] is None and test["cost"]["flops_per_image"] is None
    assert test["cost"]["device_hours"] > 0


def test_a_submission_may_state_its_cost_and_a_bad_one_fails_the_run(tmp_path):
    folder = str(FIXTURES / "states-cost")
    assert run_cli(folder, "--results-dir", str(tmp_path / "good")).exit_code == 0
    good = read_record(record_path(tmp_path / "good", "toy-lesions", "states-cost", 0))
    assert (good["cost"]["params"], good["cost"]["trainable_params"]) == (1234, 1000)
    assert good["cost"]["flops_per_image"] == 5678 and good["cost"]["flops_input"] is None
    assert "gallery" not in good  # classification: no gallery
    result = run_cli(folder, "--set", 'cost="bad"', "--results-dir", str(tmp_path / "bad"))
    assert result.exit_code == 1
    bad = read_record(record_path(tmp_path / "bad", "toy-lesions", "states-cost", 0))
    assert bad["status"] == "failed"
    assert bad["error"]["message"] == (
        "SubmissionError: Entry.cost() returned a bad value: cost.params must be null or an "
        "integer in [0, 10**18]; got -3"
    )


def test_a_bad_gallery_split_is_one_clear_error_line(tmp_path):
    result = run_cli(
        str(ROOT / "submissions" / "dummy"), "--gallery-split", "train",
        "--results-dir", str(tmp_path),
    )  # fmt: skip
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["error: MedbenchError: --gallery-split must be val or test; got 'train'"]
    assert not tmp_path.exists() or not any(tmp_path.rglob("*.json"))
