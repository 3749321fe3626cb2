"""The suite's ``mirror`` fixture: skips without the mirror, but fails when CI requires it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parents[2] / "conftest.py"


def run_suite(folder: Path, **env: str | None) -> subprocess.CompletedProcess:
    """Run a one-test suite that uses ``mirror``, with the suite's conftest, in a subprocess."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(CONFTEST, folder / "conftest.py")
    (folder / "test_uses_mirror.py").write_text(
        "def test_it(mirror):\n    assert mirror.is_dir() and mirror.is_absolute()\n"
    )
    environ = {
        k: v for k, v in os.environ.items() if k not in ("MEDBENCH_DATA", "MEDBENCH_REQUIRE_DATA")
    }
    environ.update({k: v for k, v in env.items() if v is not None})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(folder)],
        cwd=folder,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("data", [None, "absent-folder"])
def test_skips_without_the_mirror(tmp_path, data):
    value = None if data is None else str(tmp_path / data)
    result = run_suite(tmp_path / "suite", MEDBENCH_DATA=value)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "the data mirror is not available" in result.stdout


@pytest.mark.parametrize("data", [None, "absent-folder"])
def test_fails_without_the_mirror_when_required(tmp_path, data):
    value = None if data is None else str(tmp_path / data)
    result = run_suite(tmp_path / "suite", MEDBENCH_DATA=value, MEDBENCH_REQUIRE_DATA="1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 error" in result.stdout and "skipped" not in result.stdout
    assert "MEDBENCH_REQUIRE_DATA=1 requires it" in result.stdout


def test_uses_the_mirror_when_present(tmp_path):
    (tmp_path / "data").mkdir()
    result = run_suite(
        tmp_path / "suite", MEDBENCH_DATA=str(tmp_path / "data"), MEDBENCH_REQUIRE_DATA="1"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
