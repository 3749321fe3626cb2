"""Data Science Bowl 2018: nuclei instances at native size."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medbench.tasks.catalog.common import (
    INSTANCE_POLICY,
    add,
)
from medbench.tasks.spec import InputSpec, Metric, Reference, Subgroups, TaskSpec
from medbench.tasks.splits import SEED, located_in, split_frame, stratified_split

# --- nuclei and cells ----------------------------------------------------------------------------

add(
    TaskSpec(
        name="dsb2018-nuclei",
        version=1,
        kind="instance-segmentation",
        classes=("nucleus",),
        input=InputSpec(None, 3),
        dataset="dsb2018",
        modality="light microscopy",
        target="instances",
        title="Data Science Bowl 2018: nuclei instances",
        description="Instance segmentation of nuclei across microscopy modalities (Kaggle 2018 DSB "
        "stage1_train with the community label fixes); images at native size.",
        split_file="dsb2018-nuclei.csv",
        split_sha256="14802e0545fea76ed6e5552694dd427fce43345689a93e2b7bddecee297f888e",
        split_note="stratified by image type (size x grey/colour) 65/15/20, fixed seed",
        metrics=(
            Metric("dsb_ap", "Kaggle DSB 2018 average precision over IoU 0.50:0.95, per image"),
            Metric("f1_50", "object F1 at IoU > 0.5"),
            Metric("foreground_dice", "foreground Dice"),
        ),
        primary_metric="dsb_ap",
        policies=INSTANCE_POLICY,
        # the split's image types, in three: the common 256x256 grey fluorescence tiles, the
        # colour (stained tissue) images and the other grey ones
        subgroups=(
            Subgroups(
                "image type",
                "group",
                (
                    ("256x256 grey", "256x256-grey"),
                    ("colour", r".*-colour"),
                    ("other grey", r".*-grey"),
                ),
            ),
        ),
        references=(
            Reference(
                "Kaggle DSB 2018 stage-1 leaders",
                "dsb_ap",
                0.6,
                "approximate; stage-1 public test set, not this split",
            ),
        ),
    )
)


def splits(data: Path) -> dict[str, pd.DataFrame]:
    """Stratified by image type (size x grey/colour) 65/15/20."""
    ds, loc = located_in(data, "dsb2018")
    ids = list(ds.cases(loc).index)
    types = ds.case_types(loc, ids)
    assign = stratified_split(ids, types, {"train": 0.65, "val": 0.15, "test": 0.20}, seed=SEED)
    return {"dsb2018-nuclei.csv": split_frame(assign, dict(zip(ids, types, strict=True)))}
