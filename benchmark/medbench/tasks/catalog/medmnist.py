"""The MedMNIST v2 tasks: official files, official splits, MedMNIST's metrics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medbench.tasks.catalog.common import BINARY_POLICY, YOUDEN, add, binary_metrics
from medbench.tasks.spec import InputSpec, Metric, Reference, TaskSpec
from medbench.tasks.splits import located_in, split_frame

PAPER = "Yang et al. 2023 (MedMNIST v2)"
# The paper's Table of 2D results (test AUC, ACC) for each baseline.
BASELINES = (
    "ResNet-18 (28)",
    "ResNet-18 (224)",
    "ResNet-50 (28)",
    "ResNet-50 (224)",
    "auto-sklearn",
    "AutoKeras",
    "Google AutoML Vision",
)


def baselines(results: tuple[tuple[float, float], ...], *, acc: str) -> tuple[Reference, ...]:
    """The paper's (AUC, ACC) of each baseline as anchors; ``acc``: this task's name for ACC."""
    out = []
    for method, (auc, accuracy) in zip(BASELINES, results, strict=True):
        note = (
            "official split, 28x28 images"
            if "224" not in method
            else "official split, 224x224 images"
        )
        out.append(Reference(f"{PAPER}, {method}", "auc", auc, note))
        out.append(Reference(f"{PAPER}, {method}", acc, accuracy, note))
    return tuple(out)


def medmnist_binary(
    name: str, *, classes: tuple[str, str], target: str, modality: str, title: str, description: str,
    split_sha256: str, counts: str, results: tuple[tuple[float, float], ...],
) -> TaskSpec:  # fmt: skip
    """A binary MedMNIST task: AUC and ACC at 0.5 as MedMNIST's evaluator, plus the operating
    point chosen on val, calibration and Brier."""
    return TaskSpec(
        name=name,
        version=1,
        kind="binary",
        classes=classes,
        input=InputSpec((28, 28), 1),
        dataset=name,
        modality=modality,
        target=target,
        title=title,
        description=description,
        split_file=f"{name}.csv",
        split_sha256=split_sha256,
        split_note=f"the official MedMNIST split stored in the file ({counts})",
        metrics=binary_metrics(("youden",), accuracy_at="0.5"),
        primary_metric="auc",
        policies=BINARY_POLICY,
        references=baselines(results, acc="accuracy@0.5"),
        options=(("operating_points", YOUDEN),),
    )


add(
    TaskSpec(
        name="retinamnist",
        version=1,
        kind="multiclass",
        classes=("0", "1", "2", "3", "4"),
        input=InputSpec((28, 28), 3),
        dataset="retinamnist",
        modality="fundus photograph",
        target="grade",
        title="RetinaMNIST (MedMNIST v2): DR grade at 28x28",
        description="Five-level diabetic retinopathy grading on 28x28 fundus images (DeepDRiD); "
        "metrics exactly as MedMNIST's evaluator (macro one-vs-rest AUC, argmax accuracy).",
        split_file="retinamnist.csv",
        split_sha256="963173e85a16e63db2da146035583719ab44001857dab69833e1f8562cacdb66",
        split_note="the official MedMNIST split stored in the file (1080/120/400)",
        metrics=(
            Metric("macro_auc", "macro one-vs-rest AUC (MedMNIST getAUC)"),
            Metric("accuracy", "argmax accuracy (MedMNIST getACC)"),
            Metric("qwk", "quadratic weighted kappa"),
            Metric("recall", "recall per grade"),
        ),
        primary_metric="macro_auc",
        references=(
            Reference(
                "Yang et al. 2023 (MedMNIST v2), ResNet-18 (28)",
                "macro_auc",
                0.717,
                "official split; ACC 0.524",
            ),
            Reference(
                "Yang et al. 2023 (MedMNIST v2), Google AutoML Vision",
                "macro_auc",
                0.750,
                "official split; ACC 0.531",
            ),
            Reference(
                "Yang et al. 2023 (MedMNIST v2), ResNet-18 (28)",
                "accuracy",
                0.524,
                "official split",
            ),
        ),
    )
)


add(
    medmnist_binary(
        "pneumoniamnist",
        classes=("normal", "pneumonia"),
        target="pneumonia",
        modality="chest radiograph",
        title="PneumoniaMNIST (MedMNIST v2): pneumonia in paediatric chest X-rays at 28x28",
        description="Pneumonia vs normal in paediatric chest radiographs (Kermany et al. 2018), the "
        "task of CheXNet (Rajpurkar et al. 2017) at small scale; AUC and ACC at 0.5 exactly as "
        "MedMNIST's evaluator.",
        split_sha256="2b90eb15617854c6835090717713e4f1a31111f60867b4017a7dbbc4caef6af1",
        counts="4708/524/624",
        results=(
            (0.944, 0.854),
            (0.956, 0.864),
            (0.948, 0.854),
            (0.962, 0.884),
            (0.942, 0.855),
            (0.947, 0.878),
            (0.991, 0.946),
        ),
    )
)

add(
    medmnist_binary(
        "breastmnist",
        classes=("normal-or-benign", "malignant"),
        target="malignant",
        modality="ultrasound",
        title="BreastMNIST (MedMNIST v2): malignant breast ultrasound at 28x28",
        description="Malignant vs normal or benign breast ultrasound images (Al-Dhabyani et al. "
        "2020). The file labels malignant 0 and normal/benign 1; here malignant is the positive "
        "class and the score is P(malignant). AUC does not depend on which class is positive, and "
        "ACC at 0.5 differs from MedMNIST's only for scores of exactly 0.5, so the paper's numbers "
        "compare.",
        split_sha256="a60a1d23f4848eb8ea48b7d18120812fbf5be5f7953e09d7eff9aab04a0acd86",
        counts="546/78/156",
        results=(
            (0.901, 0.863),
            (0.891, 0.833),
            (0.857, 0.812),
            (0.866, 0.842),
            (0.836, 0.803),
            (0.871, 0.831),
            (0.919, 0.861),
        ),
    )
)

MEDMNIST_TASKS = ("retinamnist", "pneumoniamnist", "breastmnist")


def splits(data: Path) -> dict[str, pd.DataFrame]:
    """The official split stored in each file (case ids are ``<split>-<index>``)."""
    out = {}
    for name in MEDMNIST_TASKS:
        ds, loc = located_in(data, name)
        ids = list(ds.cases(loc).index)
        out[f"{name}.csv"] = split_frame({i: i.split("-")[0] for i in ids})
    return out
