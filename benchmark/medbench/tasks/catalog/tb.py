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


# --- external sites: train at one hospital, test at the other -----------------------------------

HOSPITALS = {"shenzhen": "Shenzhen", "montgomery": "Montgomery"}


def _external(source: str, target: str) -> TaskSpec:
    return TaskSpec(
        name=f"tb-cxr-{source}-to-{target}",
        version=1,
        kind="binary",
        classes=("normal", "tuberculosis"),
        input=InputSpec((256, 256), 1),
        dataset="tb-nlm",
        modality="chest radiograph",
        target="tb",
        title=f"NLM TB, external site: trained at {HOSPITALS[source]}, tested at {HOSPITALS[target]}",
        description=f"TB vs normal, trained and validated on {HOSPITALS[source]} images only and "
        f"tested on every {HOSPITALS[target]} image, a hospital the model never saw (Touchstone, "
        "BenchMD); the operating point is chosen on the training site's validation images and "
        "reported on the external test set (threshold transfer, TorchXRayVision #151/#175).",
        split_file=f"tb-cxr-{source}-to-{target}.csv",
        split_sha256=EXTERNAL_SHA256[source],
        split_note=f"train/val: {HOSPITALS[source]} stratified by label 80/20, fixed seed; test: "
        f"all of {HOSPITALS[target]}",
        metrics=binary_metrics(("youden",)),
        primary_metric="auc",
        policies=BINARY_POLICY,
        options=(("operating_points", YOUDEN),),
    )


EXTERNAL_SHA256 = {
    "shenzhen": "5354e8c06ebba6714da1953cb458c4182f49bbd99ffe3523e627bc7d8e2f3427",
    "montgomery": "48995f31da1cc24e93d9743b8a22d66a1ca76ab738fb1c0fadf7db2d487c4a03",
}
add(_external("shenzhen", "montgomery"))
add(_external("montgomery", "shenzhen"))


def splits(data: Path) -> dict[str, pd.DataFrame]:
    """Stratified by source hospital x label 68/17/15 (the paper's proportions), from the
    mirror's label table (the split needs no images)."""
    labels = pd.read_csv(data / "tb-nlm" / "labels.csv", dtype=str)
    ids = [Path(n).stem for n in labels["image"]]
    strata = [f"{s}-{t}" for s, t in zip(labels["source"], labels["tb"], strict=True)]
    assign = stratified_split(ids, strata, {"train": 0.68, "val": 0.17, "test": 0.15}, seed=SEED)
    sources = dict(zip(ids, labels["source"], strict=True))
    out = {"tb-cxr.csv": split_frame(assign, sources)}
    for source, target in (("shenzhen", "montgomery"), ("montgomery", "shenzhen")):
        home = [i for i in ids if sources[i] == source]
        tb = dict(zip(ids, labels["tb"], strict=True))
        inner = stratified_split(home, [tb[i] for i in home], {"train": 0.8, "val": 0.2}, seed=SEED)
        inner.update({i: "test" for i in ids if sources[i] == target})
        out[f"tb-cxr-{source}-to-{target}.csv"] = split_frame(inner, sources)
    return out
