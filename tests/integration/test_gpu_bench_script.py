"""``scripts/gpu_bench.py --device cpu --quick``: the GPU benchmark's own arithmetic, on a CPU
(tiny sizes; its figures mean nothing, its report's structure and ratios must hold)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_quick_cpu_run_reports_consistent_ratios(tmp_path):
    out = tmp_path / "bench.json"
    args = [sys.executable, "scripts/gpu_bench.py", "--device", "cpu", "--quick", "--epochs", "2"]
    done = subprocess.run(
        [*args, "--threads", "1", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert [r["model"] for r in report["results"]] == ["unet-8", "resnet50"]
    for r in report["results"]:
        per = r["per_epoch"]
        assert len(per["harness_loop"]) == len(per["plain"]) == len(r["ratio_per_pair"]) == 2
        assert r["ratio"] == pytest.approx(r["harness_images_per_s"] / r["plain_images_per_s"])
        pairs = [h / p for h, p in zip(per["harness_loop"], per["plain"], strict=True)]
        assert r["ratio_per_pair"] == pytest.approx(pairs)
        assert r["harness_epoch_images_per_s"] <= r["harness_images_per_s"] * 1.0001
    assert "| unet-8 |" in done.stdout
