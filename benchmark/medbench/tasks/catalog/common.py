"""What the catalogue's families share: metric sets, policies, operating points, registration."""

from __future__ import annotations

from medbench.tasks import TASKS
from medbench.tasks.spec import Metric, TaskSpec

# --- shared metric sets --------------------------------------------------------------------------

SEG_POLICY = (
    (
        "empty reference",
        "Dice/IoU: truth and prediction both empty -> undefined (NaN), excluded "
        "from means and counted; truth empty, prediction not -> 0",
    ),
    ("hd95", "undefined (NaN) when either mask is empty; excluded and counted"),
)


def segmentation_metrics(unit: str) -> tuple[Metric, ...]:
    return (
        Metric("dice", "Dice per class, mean over classes (per case, then over cases)"),
        Metric("iou", "Jaccard index per class, mean over classes"),
        Metric("pixel_accuracy", "fraction of pixels right per class; hides class imbalance"),
        Metric("hd95", f"95th percentile symmetric surface distance ({unit})"),
    )


def binary_metrics(
    points: tuple[str, ...], extra: tuple[Metric, ...] = (), *, accuracy_at: str = ""
) -> tuple[Metric, ...]:
    """AUC, ``extra``, accuracy at a fixed threshold (MedMNIST's ACC), sensitivity and
    specificity at each operating point, ECE, Brier."""
    out = [Metric("auc"), *extra]
    if accuracy_at:
        out.append(Metric(f"accuracy@{accuracy_at}"))
    for p in points:
        out.append(
            Metric(f"sensitivity@{p}", f"test sensitivity at the {p} threshold chosen on val")
        )
        out.append(
            Metric(f"specificity@{p}", f"test specificity at the {p} threshold chosen on val")
        )
    out += [Metric("ece"), Metric("brier")]
    return tuple(out)


YOUDEN = (("youden", "youden"),)
GULSHAN_POINTS = (
    ("high_sensitivity", ("sensitivity", 0.975)),
    ("high_specificity", ("specificity", 0.90)),
)
BINARY_POLICY = (
    ("operating points", "thresholds are chosen on the validation split, then applied to test"),
    ("undefined", "AUC with a single class in the truth is undefined (NaN)"),
)
INSTANCE_POLICY = (
    ("empty images", "DSB AP: no true and no predicted object -> 1; one side empty -> 0"),
    ("overlaps", "label maps: one label per pixel; predicted labels used as given"),
)


def add(spec: TaskSpec) -> None:
    """Register ``spec`` after checking it (a bad catalogue entry fails at import)."""
    problems = spec.check()
    if problems:
        raise ValueError(f"invalid task spec {spec.name!r}: {problems}")
    TASKS.add(spec.name, spec)
