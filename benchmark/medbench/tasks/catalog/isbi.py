"""ISBI 2012: neuronal membranes in serial-section electron microscopy."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medbench.tasks.catalog.common import (
    add,
)
from medbench.tasks.spec import InputSpec, Metric, Reference, TaskSpec
from medbench.tasks.splits import split_frame

# --- electron microscopy (ISBI 2012) -------------------------------------------------------------

add(
    TaskSpec(
        name="isbi2012-membranes",
        version=1,
        kind="multilabel-segmentation",
        classes=("membrane",),
        input=InputSpec((512, 512), 1),
        dataset="isbi2012",
        modality="electron microscopy",
        target="membranes",
        title="ISBI 2012 EM: neuronal membranes",
        description="Membrane segmentation of serial-section TEM of the Drosophila ventral nerve cord "
        "(the U-Net paper's first task). The official test labels were never published, so the "
        "test split is the last 5 labelled slices.",
        split_file="isbi2012-membranes.csv",
        split_sha256="3ae1ee8af914011947a14ac67bd3cbc33196caf3c500a60094bd3f1f0bc4dde1",
        split_note="contiguous blocks of the training volume: slices 0-19 train, 20-24 val, 25-29 test "
        "(neighbouring slices are correlated)",
        metrics=(
            Metric("v_rand", "foreground-restricted Rand score (Arganda-Carreras et al. 2015)"),
            Metric("v_info", "foreground-restricted information-theoretic score"),
            Metric("pixel_error", "fraction of pixels whose membrane label is wrong"),
            Metric("dice", "membrane Dice"),
            Metric("iou", "membrane Jaccard index"),
        ),
        primary_metric="v_rand",
        policies=(
            (
                "segments",
                "predicted membrane probability < 0.5 = cell interior; 4-connected "
                "components are the predicted segments; truth segments likewise from the labels",
            ),
            (
                "v_rand / v_info",
                "foreground-restricted (true membrane pixels ignored), as the official "
                "Fiji script; unlike the official scoring, predicted membranes are not thinned first, so "
                "thick membranes score lower than they would on the challenge server",
            ),
        ),
        references=(
            Reference(
                "Ronneberger et al. 2015 (U-Net)",
                "pixel_error",
                0.0611,
                "official ISBI 2012 test volume (hidden labels), not this split",
            ),
        ),
    )
)


def splits(data: Path) -> dict[str, pd.DataFrame]:
    """Consecutive sections of one volume are correlated: contiguous blocks, not random slices."""
    assign = {
        f"slice-{i:02d}": ("train" if i < 20 else "val" if i < 25 else "test") for i in range(30)
    }
    groups = {c: f"block-{s}" for c, s in assign.items()}
    return {"isbi2012-membranes.csv": split_frame(assign, groups)}
