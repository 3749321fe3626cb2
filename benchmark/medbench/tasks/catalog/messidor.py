"""Messidor-2 fundus photographs: referable diabetic retinopathy and the five ICDR grades."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medbench.tasks.catalog.common import (
    BINARY_POLICY,
    GULSHAN_POINTS,
    add,
    binary_metrics,
)
from medbench.tasks.spec import InputSpec, Metric, Reference, Subgroups, TaskSpec
from medbench.tasks.splits import SEED, located_in, split_frame, stratified_split

# --- retinal photographs -------------------------------------------------------------------------

_MESSIDOR_NOTE = (
    "stratified by DR grade 60/15/25, fixed seed; image-level: this copy has no examination ids, "
    "so a patient's two eyes may fall in different splits"
)

add(
    TaskSpec(
        name="messidor2-referable",
        version=1,
        kind="binary",
        classes=("non-referable", "referable"),
        input=InputSpec((384, 384), 3),
        dataset="messidor2",
        modality="fundus photograph",
        target="referable",
        title="Messidor-2: referable diabetic retinopathy",
        description="Referable DR (ICDR grade >= 2, moderate or worse) from fundus photographs, as "
        "in Gulshan et al. 2016; adjudicated grades of Krause et al. 2018; gradable images only.",
        split_file="messidor2-referable.csv",
        split_sha256="3fb4062cb70f70ad82b5f18d5c749d11e26737659a8af54f2f2b0ce254300879",
        split_note=_MESSIDOR_NOTE,
        metrics=binary_metrics(("high_sensitivity", "high_specificity")),
        primary_metric="auc",
        policies=BINARY_POLICY,
        references=(
            Reference(
                "Gulshan et al. 2016",
                "auc",
                0.990,
                "ImageNet-pretrained Inception-v3 trained on 128k EyePACS images; all of "
                "Messidor-2 as test; grades by a different panel",
            ),
        ),
        options=(("operating_points", GULSHAN_POINTS),),
        # referable = ICDR grade >= 2: moderate, severe, proliferative of messidor2-grading
        coarse_of=("messidor2-grading", (2, 3, 4)),
    )
)

add(
    TaskSpec(
        name="messidor2-grading",
        version=1,
        kind="multiclass",
        classes=("no DR", "mild", "moderate", "severe", "proliferative"),
        input=InputSpec((384, 384), 3),
        dataset="messidor2",
        modality="fundus photograph",
        target="grade",
        title="Messidor-2: five-grade ICDR diabetic retinopathy",
        description="Five-class ICDR grading of fundus photographs (the APTOS/EyePACS Kaggle task), "
        "scored by quadratic weighted kappa.",
        split_file="messidor2-grading.csv",
        split_sha256="3fb4062cb70f70ad82b5f18d5c749d11e26737659a8af54f2f2b0ce254300879",
        split_note=_MESSIDOR_NOTE + "; the same split as messidor2-referable",
        metrics=(
            Metric("qwk", "quadratic weighted kappa of the argmax grade"),
            Metric("accuracy", "argmax accuracy"),
            Metric("macro_auc", "macro one-vs-rest AUC"),
            Metric("recall", "recall per grade"),
        ),
        primary_metric="qwk",
        # what Gulshan et al. screen for: is the model as good on the referable eyes?
        subgroups=(
            Subgroups(
                "referable (truth)", "y_true", (("referable", "2|3|4"), ("not referable", "0|1"))
            ),
        ),
    )
)


def splits(data: Path) -> dict[str, pd.DataFrame]:
    """Stratified by DR grade 60/15/25, image-level; both tasks share the split."""
    ds, loc = located_in(data, "messidor2")
    cases = ds.cases(loc)
    assign = stratified_split(
        list(cases.index),
        list(cases["dr_grade"]),
        {"train": 0.6, "val": 0.15, "test": 0.25},
        seed=SEED,
    )
    frame = split_frame(assign)
    return {"messidor2-referable.csv": frame, "messidor2-grading.csv": frame}
