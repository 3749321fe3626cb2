"""Regenerate the committed split files from the data (run once; the outputs are committed).

    MEDBENCH_DATA=../shared/data python scripts/make_splits.py [--check]

With ``--check`` nothing is written: the script says whether every committed file would be
reproduced byte for byte (the test suite runs the same check on the mirror).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

from medbench.data.datasets import DATASETS, Located
from medbench.tasks.splits import SPLIT_DIR, split_csv_bytes, split_frame, stratified_split

SEED = 20251126  # the one seed every stratified split uses


def _locate(dataset: str, data: Path) -> Located:
    ds = DATASETS.get(dataset)
    root = data / ds.mirror_dir
    layout = ds.detect(root)
    if layout is None:
        raise SystemExit(f"{dataset}: not found under {root}")
    return Located(root, layout)


def jsrt(data: Path) -> dict[str, pd.DataFrame]:
    loc = _locate("jsrt-scr", data)
    cases = DATASETS.get("jsrt-scr").cases(loc)
    ids, nodule = list(cases.index), list(cases["nodule"])
    fold1 = [i for i in ids if cases.loc[i, "scr_fold"] == "1"]
    # Anatomy: test = SCR fold 2; 20 % of fold 1 (stratified by nodule) for validation.
    inner = stratified_split(
        fold1, [cases.loc[i, "nodule"] for i in fold1], {"train": 0.8, "val": 0.2}, seed=SEED
    )
    anatomy = {i: inner.get(i, "test") for i in ids}
    groups = {i: f"scr-fold-{cases.loc[i, 'scr_fold']}" for i in ids}
    nod = stratified_split(ids, nodule, {"train": 0.6, "val": 0.15, "test": 0.25}, seed=SEED)
    return {
        "jsrt-anatomy.csv": split_frame(anatomy, groups),
        "jsrt-nodule.csv": split_frame(nod),
    }


def isbi() -> dict[str, pd.DataFrame]:
    # Consecutive sections of one volume are correlated: contiguous blocks, not random slices.
    assign = {
        f"slice-{i:02d}": ("train" if i < 20 else "val" if i < 25 else "test") for i in range(30)
    }
    groups = {c: f"block-{s}" for c, s in assign.items()}
    return {"isbi2012-membranes.csv": split_frame(assign, groups)}


def messidor(data: Path) -> dict[str, pd.DataFrame]:
    loc = _locate("messidor2", data)
    cases = DATASETS.get("messidor2").cases(loc)
    assign = stratified_split(
        list(cases.index),
        list(cases["dr_grade"]),
        {"train": 0.6, "val": 0.15, "test": 0.25},
        seed=SEED,
    )
    frame = split_frame(assign)
    return {"messidor2-referable.csv": frame, "messidor2-grading.csv": frame}


def retinamnist(data: Path) -> dict[str, pd.DataFrame]:
    loc = _locate("retinamnist", data)
    ids = list(DATASETS.get("retinamnist").cases(loc).index)
    return {"retinamnist.csv": split_frame({i: i.split("-")[0] for i in ids})}


def dsb(data: Path) -> dict[str, pd.DataFrame]:
    ds = DATASETS.get("dsb2018")
    loc = _locate("dsb2018", data)
    ids = list(ds.cases(loc).index)
    types = ds.case_types(loc, ids)
    assign = stratified_split(ids, types, {"train": 0.65, "val": 0.15, "test": 0.20}, seed=SEED)
    return {"dsb2018-nuclei.csv": split_frame(assign, dict(zip(ids, types, strict=True)))}


def tb(data: Path) -> dict[str, pd.DataFrame]:
    labels = pd.read_csv(data / "tb-nlm" / "labels.csv", dtype=str)
    ids = [Path(n).stem for n in labels["image"]]
    strata = [f"{s}-{t}" for s, t in zip(labels["source"], labels["tb"], strict=True)]
    assign = stratified_split(ids, strata, {"train": 0.68, "val": 0.17, "test": 0.15}, seed=SEED)
    return {"tb-cxr.csv": split_frame(assign, dict(zip(ids, labels["source"], strict=True)))}


def ctc() -> dict[str, pd.DataFrame]:
    # The unit is the sequence: 01 trains (its last fifth of annotated frames validates), 02 tests.
    frame = pd.DataFrame({"case_id": ["01", "02"], "split": ["train", "test"]})
    return {"ctc-u373.csv": frame, "ctc-hela.csv": frame}


def toy() -> dict[str, pd.DataFrame]:
    from medbench.data.datasets.toy import COUNTS

    out = {}
    for name, n in COUNTS.items():
        ids = [f"{name}-{i:04d}" for i in range(n)]
        strata = [str(i % 2) for i in range(n)]  # toy-lesions alternates labels
        out[f"{name}.csv"] = split_frame(
            stratified_split(ids, strata, {"train": 0.6, "val": 0.15, "test": 0.25}, seed=SEED)
        )
    return out


def all_splits(data: Path) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    for make in (jsrt, messidor, retinamnist, dsb, tb):
        out.update(make(data))
    for make in (isbi, ctc, toy):
        out.update(make())
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
