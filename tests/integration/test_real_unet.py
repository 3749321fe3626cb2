"""On real data (the mirror), CPU, small: the U-Net learns the JSRT lungs in two epochs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from medbench.cli import app
from medbench.results import read_record, record_path

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.mirror
def test_unet_two_epochs_on_jsrt_anatomy_segments_the_lungs(mirror, tmp_path):
    # Reduced size: base width 16 instead of 32; batches of 2 give 100 steps in two epochs.
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(ROOT / "submissions" / "unet"),
            "--task",
            "jsrt-anatomy",
            "--device",
            "cpu",
            "--epochs",
            "2",
            "--set",
            "base_width=16",
            "--set",
            "batch_size=2",
            "--results-dir",
            str(tmp_path),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    rec = read_record(record_path(tmp_path, "jsrt-anatomy", "unet", 0))
    assert rec["status"] == "ok"
    assert rec["task"]["n_test"] == 123
    assert rec["per_class"]["lungs"]["dice"]["value"] > 0.8
    # The heart is learnt too, if less well; the clavicles need far longer training.
    assert rec["per_class"]["heart"]["dice"]["value"] > 0.5
    print(
        f"jsrt-anatomy, 2 epochs on CPU: fit {rec['timings']['fit_s']:.0f} s, "
        f"lungs {rec['per_class']['lungs']['dice']['value']:.3f}"
    )
