"""`medbench run --set tta=flips` end to end: a costed entry of its own, TTA on val and test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medbench.cli import app
from medbench.results import read_record, record_path

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


# Two sandboxed toy runs: 50 s to 2 min on a shared 2-core CPU.
@pytest.mark.slow
def test_a_tta_variant_records_its_tta_and_predicts_val_and_test_with_it(tmp_path):
    results = tmp_path / "results"
    args = [
        "run",
        str(ROOT / "submissions" / "unet"),
        "--task",
        "toy-anatomy",
        "--epochs",
        "1",
        "--set",
        "base_width=8",
        "--results-dir",
        str(results),
        "--quiet",
    ]
    base = runner.invoke(app, args)
    assert base.exit_code == 0, base.output
    tta = runner.invoke(app, [*args, "--set", "tta=flips", "--variant", "tta"])
    assert tta.exit_code == 0, tta.output
    assert "unet+tta/toy-anatomy/seed0" in tta.output

    plain = read_record(record_path(results, "toy-anatomy", "unet", 0))
    record = read_record(record_path(results, "toy-anatomy", "unet+tta", 0))  # sealed and valid
    assert record["status"] == "ok" and record["submission"]["variant"] == "tta"
    assert record["train"] == {**plain["train"], "tta": "flips"}
    assert "tta" not in plain["train"]  # the default is not written: old records stay identical
    assert np.isfinite(record["metrics"]["dice"]["value"])
    assert record["timings"]["predict_s"] > 0
    # CPU training is deterministic, so both runs predict with the same weights: TTA changed
    # the val predictions (where operating points are chosen) as well as the test ones.
    folder = results / "toy-anatomy"
    with (
        np.load(folder / plain["predictions"]["file"]) as a,
        np.load(folder / record["predictions"]["file"]) as b,
    ):
        for split in ("val", "test"):
            assert np.array_equal(a[f"{split}.case_ids"], b[f"{split}.case_ids"])
            assert not np.array_equal(a[f"{split}.values"], b[f"{split}.values"]), split
