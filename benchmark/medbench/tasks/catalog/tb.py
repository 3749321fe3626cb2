"""NLM Shenzhen + Montgomery: pulmonary tuberculosis."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medbench.tasks.catalog.common import (
    BINARY_POLICY,
    YOUDEN,
    add,
    binary_metrics,
)
from medbench.tasks.spec import InputSpec, Metric, Reference, Subgroups, TaskSpec
from medbench.tasks.splits import SEED, split_frame, stratified_split

# --- tuberculosis --------------------------------------------------------------------------------

add(
    TaskSpec(
        name="tb-cxr",
        version=1,
        kind="binary",
        classes=("normal", "tuberculosis"),
        input=InputSpec((256, 256), 1),
        dataset="tb-nlm",
        modality="chest radiograph",
        target="tb",
        title="NLM Shenzhen + Montgomery: pulmonary tuberculosis",
        description="TB vs normal chest radiographs (Lakhani & Sundaram 2017); AUC overall and per "
        "source hospital.",
        split_file="tb-cxr.csv",
        split_sha256="273cfb05b1a8161d52b4ad01ec6dff791703d871fd212b63a6fbd0e556c1f65f",
        split_note="stratified by source x label 68/17/15 (the paper's proportions), fixed seed",
        metrics=binary_metrics(
            ("youden",),
            (
                Metric("auc@shenzhen", "AUC on the Shenzhen test images"),
                Metric("auc@montgomery", "AUC on the Montgomery test images"),
            ),
        ),
        primary_metric="auc",
        policies=BINARY_POLICY,
        references=(
            Reference(
                "Lakhani & Sundaram 2017",
                "auc",
                0.99,
                "ensemble of ImageNet-pretrained AlexNet + GoogLeNet; their test set also "
                "held Belarus and Thomas Jefferson images",
            ),
        ),
        options=(("operating_points", YOUDEN), ("group_column", "source")),
        subgroups=(
            Subgroups(
                "hospital", "group", (("Shenzhen", "shenzhen"), ("Montgomery", "montgomery"))
            ),
        ),
    )
)


def splits(data: Path) -> dict[str, pd.DataFrame]:
    """Stratified by source hospital x label 68/17/15 (the paper's proportions), from the
    mirror's label table (the split needs no images)."""
    labels = pd.read_csv(data / "tb-nlm" / "labels.csv", dtype=str)
    ids = [Path(n).stem for n in labels["image"]]
    strata = [f"{s}-{t}" for s, t in zip(labels["source"], labels["tb"], strict=True)]
    assign = stratified_split(ids, strata, {"train": 0.68, "val": 0.17, "test": 0.15}, seed=SEED)
    return {"tb-cxr.csv": split_frame(assign, dict(zip(ids, labels["source"], strict=True)))}
