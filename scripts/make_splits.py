"""Regenerate the committed split files from the data (run once; the outputs are committed).

Each task family's recipe lives beside its specs (``splits(data)`` in
``medbench/tasks/catalog/<family>.py``); this script runs them all.

    MEDBENCH_DATA=../shared/data python scripts/make_splits.py [--check]

With ``--check`` nothing is written: the script says whether every committed file would be
reproduced byte for byte (the test suite runs the same check on the mirror).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

import pandas as pd

from medbench.tasks.catalog import FAMILIES
from medbench.tasks.splits import SPLIT_DIR, split_csv_bytes


def all_splits(data: Path) -> dict[str, pd.DataFrame]:
    """Every family's recipe (``splits(data)`` in its catalogue module), file name -> split."""
    out: dict[str, pd.DataFrame] = {}
    for family in FAMILIES:
        out.update(importlib.import_module(f"medbench.tasks.catalog.{family}").splits(data))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    data = Path(os.environ.get("MEDBENCH_DATA", "../shared/data"))
    status = 0
    for name, frame in sorted(all_splits(data).items()):
        content = split_csv_bytes(frame)
        path = SPLIT_DIR / name
        if args.check:
            same = path.is_file() and path.read_bytes() == content
            print(f"{'ok  ' if same else 'DIFF'} {name}")
            status |= not same
        else:
            path.write_bytes(content)
            print(f"wrote {path} ({len(frame)} rows)")
    return status


if __name__ == "__main__":
    sys.exit(main())
