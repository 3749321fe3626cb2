"""Cell Tracking Challenge: cell instances, split by sequence."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medbench.tasks.catalog.common import (
    INSTANCE_POLICY,
    add,
)
from medbench.tasks.spec import InputSpec, Metric, Reference, TaskSpec


def _ctc(name: str, dataset: str, title: str, seg: float) -> TaskSpec:
    return TaskSpec(
        name=name,
        version=1,
        kind="instance-segmentation",
        classes=("cell",),
        input=InputSpec(None, 1),
        dataset=dataset,
        modality="light microscopy",
        target="instances",
        title=title,
        description="Cell instance segmentation from the Cell Tracking Challenge, as in the U-Net "
        "paper's cell table (SEG = the paper's IoU).",
        split_file=f"{name}.csv",
        split_sha256="5c0e7a5d6679126f29b1db30ac253eee7f58ebef4f002189fd1a4ed880e81e2c",
        split_note="by sequence: train = sequence 01 (its last 20 % of annotated frames, "
        "contiguous, validate), test = sequence 02; only frames with GT SEG masks",
        metrics=(
            Metric("seg", "Cell Tracking Challenge SEG (matched Jaccard, over all objects)"),
            Metric("dsb_ap", "DSB 2018 average precision"),
            Metric("foreground_dice", "foreground Dice"),
        ),
        primary_metric="seg",
        policies=INSTANCE_POLICY,
        references=(
            Reference(
                "Ronneberger et al. 2015 (U-Net)",
                "seg",
                seg,
                "ISBI 2015 cell tracking challenge test sequences, not this split",
            ),
        ),
        options=(("split_unit", "sequence"), ("val_fraction", 0.2)),
    )


add(_ctc("ctc-u373", "ctc-u373", "CTC PhC-C2DH-U373: glioblastoma cells", 0.9203))
add(_ctc("ctc-hela", "ctc-hela", "CTC DIC-C2DH-HeLa: HeLa cells", 0.7756))


def splits(data: Path) -> dict[str, pd.DataFrame]:
    """The unit is the sequence: 01 trains (its last fifth of annotated frames validates), 02
    tests."""
    frame = pd.DataFrame({"case_id": ["01", "02"], "split": ["train", "test"]})
    return {"ctc-u373.csv": frame, "ctc-hela.csv": frame}
