"""``medbench export`` end to end on the committed result records (read only: the files go to a
temporary folder)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medbench.cli import app
from medbench.exports import FORMATS
from medbench.exports.model_index import number
from medbench.leaderboard.export import rounded
from medbench.results import read_record

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "leaderboards" / "results"
RECORDS = {  # kind -> a committed record
    "binary": RESULTS / "pneumoniamnist" / "cnn.seed0.json",
    "multiclass": RESULTS / "retinamnist" / "cnn.seed0.json",
    "multilabel-segmentation": RESULTS / "jsrt-anatomy" / "unet.seed0.json",
    "instance-segmentation": RESULTS / "dsb2018-nuclei" / "unet.seed0.json",
}
cli = CliRunner()


def invoke(*args):
    return cli.invoke(app, ["export", *map(str, args)])


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("fmt", FORMATS.names())
def test_every_format_of_every_kind_it_takes(fmt, tmp_path):
    paths = [p for kind, p in RECORDS.items() if kind in FORMATS.get(fmt).kinds]
    result = invoke(*paths, "--format", fmt, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    for path in paths:
        record = read_record(path)
        stem = f"{record['task']['name']}.{record['submission']['name']}.seed{record['seed']}"
        written = tmp_path / (stem + FORMATS.get(fmt).suffix)
        assert f"wrote {written}" in result.stdout
        text = written.read_text()
        n = record["task"]["n_test"]
        if fmt == "gc":
            case = json.loads(text)["case"]
            assert list(case["case_id"].values()) == record["per_case"]["case_id"]
            assert all(len(column) == n for column in case.values())
        elif fmt == "nnunet":
            assert len(json.loads(text)["metric_per_case"]) == n
        elif fmt == "csv":
            rows = list(csv.reader(io.StringIO(text)))
            assert [r[0] for r in rows[1:]] == record["per_case"]["case_id"]
        else:
            primary = record["primary_metric"]
            value = rounded(record["metrics"][primary]["value"])
            assert f'- type: "{primary}"\n      value: {number(value)}' in text


def test_a_results_folder_exports_each_record(tmp_path):
    folder = RESULTS / "retinamnist"
    result = invoke(folder, "--format", "csv", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    names = sorted(p.stem for p in folder.glob("*.json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"retinamnist.{n}.csv" for n in names]


def test_the_same_record_exports_to_the_same_bytes(tmp_path):
    for out in ("a", "b"):
        assert invoke(RECORDS["multiclass"], "-f", "gc", "--out", tmp_path / out).exit_code == 0
    (a,), (b,) = (list((tmp_path / out).iterdir()) for out in ("a", "b"))
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(
    "args,message",
    [
        (
            [RECORDS["binary"], "--format", "nnunet"],
            "error: ExportError: --format nnunet takes records of multilabel-segmentation or "
            f"instance-segmentation tasks; {RECORDS['binary']} is of pneumoniamnist, a binary task",
        ),
        (
            [RECORDS["binary"], "--format", "yaml"],
            "error: UnknownNameError: unknown export format 'yaml'",
        ),
        (
            [ROOT / "pyproject.toml", "--format", "csv"],
            f"error: RecordError: cannot read result record {ROOT / 'pyproject.toml'}",
        ),
    ],
)
def test_bad_input_is_one_error_line_and_nothing_written(args, message, tmp_path):
    result = invoke(*args, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert len(lines(result.stderr)) == 1 and lines(result.stderr)[0].startswith(message)
    assert not (tmp_path / "out").exists()


def test_a_tampered_record_among_good_ones_stops_the_export(tmp_path):
    record = json.loads(RECORDS["multiclass"].read_text())
    record["metrics"]["macro_auc"]["value"] = 0.99
    bad = tmp_path / "retinamnist" / "cnn.seed0.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps(record))
    result = invoke(RECORDS["binary"], bad, "--format", "gc", "--out", tmp_path / "out")
    assert result.exit_code == 1
    (line,) = lines(result.stderr)
    assert line.startswith(
        f"error: RecordError: result record {bad} does not match its record_sha256"
    )
    assert not (tmp_path / "out").exists()
