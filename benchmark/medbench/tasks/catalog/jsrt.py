"""JSRT chest radiographs with the SCR masks: anatomy segmentation and nodule detection."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medbench.tasks.catalog.common import (
    BINARY_POLICY,
    SEG_POLICY,
    YOUDEN,
    add,
    binary_metrics,
    segmentation_metrics,
)
from medbench.tasks.spec import InputSpec, Reference, Subgroups, TaskSpec
from medbench.tasks.splits import SEED, located_in, split_frame, stratified_split

# --- chest radiographs (JSRT + SCR) --------------------------------------------------------------

add(
    TaskSpec(
        name="jsrt-anatomy",
        version=1,
        kind="multilabel-segmentation",
        classes=("lungs", "heart", "clavicles"),
        input=InputSpec((256, 256), 1),
        dataset="jsrt-scr",
        modality="chest radiograph",
        target="anatomy",
        title="JSRT + SCR: lungs, heart and clavicles",
        description="Multi-label segmentation of chest radiographs (Novikov et al. 2018): lungs "
        "(left + right), heart, clavicles (left + right); clavicles overlap the lungs.",
        split_file="jsrt-anatomy.csv",
        split_sha256="312f665d2d2453cf3a92f7c22de2750458d60888e4a53284da3dea0fa59cdcf3",
        split_note="test = SCR fold 2 (the 123 even-numbered images); train/val = fold 1 with a fixed "
        "20 % validation subset stratified by nodule",
        metrics=segmentation_metrics("mm"),
        primary_metric="dice",
        policies=SEG_POLICY,
        references=(
            Reference(
                "Novikov et al. 2018 (U-Net)",
                "dice",
                0.9297,
                "mean of the per-structure Dice; same SCR fold protocol, 256x256; their own "
                "training set-up",
                (("lungs", 0.971), ("heart", 0.938), ("clavicles", 0.880)),
            ),
            Reference(
                "Novikov et al. 2018 (InvertedNet, Dice loss)",
                "iou",
                0.900,
                "mean of the per-structure Jaccard of their best model, from the abstract of "
                "arXiv:1701.08816v4; same SCR fold protocol; their own training set-up",
                (("lungs", 0.950), ("heart", 0.882), ("clavicles", 0.868)),
            ),
        ),
        # JSRT: 0.175 mm pixels at 2048x2048; at 256x256 one pixel is 8 of those.
        options=(("pixel_spacing_mm", 0.175 * 2048 / 256),),
        # JSRT names its 154 nodule images JPCLN### and its 93 non-nodule images JPCNN###
        subgroups=(
            Subgroups("nodule", "case_id", (("nodule", r"JPCLN.*"), ("no nodule", r"JPCNN.*"))),
        ),
    )
)

add(
    TaskSpec(
        name="jsrt-nodule",
        version=1,
        kind="binary",
        classes=("no-nodule", "nodule"),
        input=InputSpec((256, 256), 1),
        dataset="jsrt-scr",
        modality="chest radiograph",
        target="nodule",
        title="JSRT: lung nodule present (JPCLN) or not (JPCNN)",
        description="Binary classification of chest radiographs: does the image contain a lung "
        "nodule? (154 with, 93 without.)",
        split_file="jsrt-nodule.csv",
        split_sha256="d8909e92a3b76e83ab8873b351349ac62a8ceb36cfefd027faeb0682f759d5bd",
        split_note="stratified by label 60/15/25, fixed seed",
        metrics=binary_metrics(("youden",)),
        primary_metric="auc",
        policies=BINARY_POLICY,
        options=(("operating_points", YOUDEN),),
    )
)


def splits(data: Path) -> dict[str, pd.DataFrame]:
    """Anatomy: test = SCR fold 2, 20 % of fold 1 (stratified by nodule) validates. Nodule:
    stratified by label 60/15/25."""
    ds, loc = located_in(data, "jsrt-scr")
    cases = ds.cases(loc)
    ids, nodule = list(cases.index), list(cases["nodule"])
    fold1 = [i for i in ids if cases.loc[i, "scr_fold"] == "1"]
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
