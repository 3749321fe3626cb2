"""``scripts/make_splits.py`` remakes every committed split byte for byte from the mirror."""

from __future__ import annotations

import runpy
from pathlib import Path

import pandas as pd
import pytest

from medbench.tasks import all_tasks
from medbench.tasks.splits import SPLIT_DIR, split_csv_bytes

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "make_splits.py"
SPLIT_FILES = sorted({s.split_file for s in all_tasks()})


@pytest.fixture(scope="module")
def remade(mirror: Path) -> dict[str, pd.DataFrame]:
    # run_path does not run main(): only the functions are defined.
    all_splits = runpy.run_path(str(SCRIPT))["all_splits"]
    return all_splits(mirror)


@pytest.mark.mirror
def test_the_script_makes_exactly_the_committed_files(remade):
    assert set(remade) == set(SPLIT_FILES)


@pytest.mark.mirror
@pytest.mark.parametrize("split_file", SPLIT_FILES)
def test_committed_split_is_reproduced_byte_for_byte(remade, split_file):
    expected = (SPLIT_DIR / split_file).read_bytes()
    found = split_csv_bytes(remade[split_file])
    assert found == expected, f"{split_file} differs from what make_splits.py makes"
