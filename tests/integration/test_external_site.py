"""External-site tasks: train and validate at one hospital, test at the other (threshold transfer).

Stand-in NLM TB archives whose TB images are brighter than the normal ones, and whose Montgomery
images are all darker than Shenzhen's (another scanner): a brightness score ranks both hospitals
perfectly, but the operating point chosen on Shenzhen's validation images does not transfer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fakes import TB_FOLDERS
from medbench.cli import app
from medbench.data.prepare import prepare
from medbench.results import read_record
from medbench.tasks import get_task
from medbench.tasks.splits import load_split

ROOT = Path(__file__).resolve().parents[2]
BRIGHTNESS = ROOT / "tests" / "fixtures" / "submissions" / "brightness"
cli = CliRunner()


@pytest.fixture(scope="module")
def shifted_tb(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tb-shifted")
    rng = np.random.default_rng(3)
    for name in load_split(get_task("tb-cxr"))["case_id"]:
        tb = name.endswith("_1")
        level = (140 if tb else 100) - (40 if name.startswith("MCUCXR") else 0)
        grey = np.clip(rng.normal(level, 5, (16, 16)), 0, 255).astype(np.uint8)
        path = root / TB_FOLDERS[name[:6]] / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grey).save(path)
    return root


@pytest.mark.parametrize(
    ("task", "home", "away"),
    [("tb-cxr-shenzhen-to-montgomery", "CHNCXR", "MCUCXR"), ("tb-cxr-montgomery-to-shenzhen", "MCUCXR", "CHNCXR")],
)  # fmt: skip
def test_train_and_val_at_home_test_away(task, home, away, shifted_tb):
    prepared = prepare(task, from_dir=shifted_tb)
    for split, prefix in (("train", home), ("val", home), ("test", away)):
        ids = prepared.split(split, with_targets=False).case_ids
        assert ids and all(c.startswith(prefix) for c in ids), split
    all_away = [c for c in load_split(get_task("tb-cxr"))["case_id"] if c.startswith(away)]
    assert sorted(prepared.split("test", with_targets=False).case_ids) == sorted(all_away)


def test_the_threshold_chosen_at_home_fails_away(shifted_tb, tmp_path):
    task = "tb-cxr-shenzhen-to-montgomery"
    prepare(task, from_dir=shifted_tb)
    results = tmp_path / "results"
    out = cli.invoke(
        app, ["run", str(BRIGHTNESS), "--task", task, "--quiet", "--results-dir", str(results)]
    )
    assert out.exit_code == 0, out.output
    record = read_record(results / task / "brightness.seed0.json")
    metrics = record["metrics"]
    assert metrics["auc"]["value"] > 0.99  # the ranking transfers...
    threshold = record["operating_points"]["youden"]["threshold"]
    assert 100 / 255 < threshold < 140 / 255  # ...chosen between Shenzhen's two classes,
    assert metrics["sensitivity@youden"]["value"] < 0.1  # which Montgomery's TB images fall below
    assert metrics["specificity@youden"]["value"] > 0.9
