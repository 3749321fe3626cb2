"""On real data: JSRT's terms forbid redistributing its images, so a JSRT run's worst-cases
gallery (committed beside the record) draws the outlines only, on black."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from medbench.cli import app
from medbench.results import read_record, record_path

ROOT = Path(__file__).resolve().parents[2]
OUTLINES = {(25, 230, 25), (25, 150, 255), (255, 205, 0), (255, 0, 255)}  # truth per class, pred


@pytest.mark.mirror
def test_a_jsrt_gallery_has_no_image_pixels(mirror, tmp_path):
    result = CliRunner().invoke(
        app,
        ["run", str(ROOT / "submissions" / "dummy"), "--task", "jsrt-anatomy",
         "--results-dir", str(tmp_path), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = read_record(record_path(tmp_path, "jsrt-anatomy", "dummy", 0))
    assert record["gallery"]["images"] is False
    picture = Image.open(tmp_path / "jsrt-anatomy" / record["gallery"]["file"]).convert("RGB")
    tiles = np.asarray(picture)[58:-10]  # below the title and the case captions
    colours = {tuple(int(v) for v in c) for c in np.unique(tiles.reshape(-1, 3), axis=0)}
    # white canvas, black tiles, outline colours: not one grey level of a radiograph
    assert colours <= {(255, 255, 255), (0, 0, 0)} | OUTLINES
    assert len(colours & OUTLINES) >= 2
