"""Fixed splits: how they were made (so they can be remade and checked) and how they are read.

Split files are committed CSVs (``case_id,split[,group]``) under ``medbench/tasks/splits/``;
each task's spec carries the file's SHA-256, and a file that no longer matches is refused.
"""

from __future__ import annotations

import io
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.data.files import sha256_bytes
from medbench.errors import SplitError
from medbench.tasks.spec import SPLITS, TaskSpec

SPLIT_DIR = Path(str(resources.files("medbench.tasks") / "splits"))
SEED = 20251126  # the one seed every stratified split uses


def located_in(data: Path, dataset: str):
    """The raw data set ``dataset`` in the mirror (or official layout) under ``data``."""
    from medbench.data.datasets import DATASETS, Located

    ds = DATASETS.get(dataset)
    root = data / ds.mirror_dir
    layout = ds.detect(root)
    if layout is None:
        raise SplitError(f"{dataset}: not found under {root}")
    return ds, Located(root, layout)


def stratified_split(
    case_ids: list[str],
    strata: list[str],
    fractions: dict[str, float],
    *,
    seed: int,
) -> dict[str, str]:
    """Assign each case to a split, keeping each stratum's proportions.

    Within a stratum (sorted case ids, then shuffled with ``seed``), the first
    ``round(n * f_train)`` cases go to train, the next ``round(n * f_val)`` to val, the rest to
    the last split. Deterministic for a given input and seed.
    """
    if abs(sum(fractions.values()) - 1.0) > 1e-9:
        raise ValueError(f"split fractions must sum to 1; got {fractions}")
    rng = np.random.default_rng(seed)
    names = list(fractions)
    assignment: dict[str, str] = {}
    table = pd.DataFrame({"case_id": case_ids, "stratum": strata}).sort_values("case_id")
    for _, group in sorted(table.groupby("stratum"), key=lambda kv: str(kv[0])):
        ids = list(group["case_id"])
        order = rng.permutation(len(ids))
        bounds, total = [], 0.0
        for name in names[:-1]:
            total += fractions[name]
            bounds.append(int(round(len(ids) * total)))
        for rank, i in enumerate(order):
            split = names[-1]
            for name, bound in zip(names[:-1], bounds, strict=True):
                if rank < bound:
                    split = name
                    break
            assignment[ids[i]] = split
    return assignment


def split_frame(assignment: dict[str, str], groups: dict[str, str] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({"case_id": list(assignment), "split": list(assignment.values())})
    if groups is not None:
        frame["group"] = [groups[c] for c in frame["case_id"]]
    return frame.sort_values("case_id").reset_index(drop=True)


def split_csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


def split_path(spec: TaskSpec) -> Path:
    return SPLIT_DIR / spec.split_file


def load_split(spec: TaskSpec) -> pd.DataFrame:
    """The task's committed split, checked against the SHA-256 in its spec."""
    path = split_path(spec)
    if not path.is_file():
        raise SplitError(f"split file {path} of task {spec.name!r} is missing")
    data = path.read_bytes()
    found = sha256_bytes(data)
    if found != spec.split_sha256:
        raise SplitError(
            f"split file {path} of task {spec.name!r} has changed: expected SHA-256 "
            f"{spec.split_sha256}, found {found}. Splits are fixed; restore the file or bump "
            "the task's version with a new hash."
        )
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    if list(frame.columns[:2]) != ["case_id", "split"]:
        raise SplitError(f"split file {path} must start with columns case_id,split")
    bad = sorted(set(frame["split"]) - set(SPLITS))
    if bad:
        raise SplitError(f"split file {path} has unknown split names {bad}; allowed {SPLITS}")
    if frame["case_id"].duplicated().any():
        dupes = frame.loc[frame["case_id"].duplicated(), "case_id"].tolist()[:5]
        raise SplitError(f"split file {path} lists cases more than once: {dupes}")
    return frame
