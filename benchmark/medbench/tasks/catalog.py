"""Every task medbench defines. Bump a task's ``version`` when its split, preparation or metrics change."""

from __future__ import annotations

from medbench.tasks import TASKS
from medbench.tasks.spec import InputSpec, Metric, Reference, TaskSpec

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
        Metric("dice", True, "Dice per class, mean over classes (per case, then over cases)", True),
        Metric("iou", True, "Jaccard index per class, mean over classes", True),
        Metric(
            "pixel_accuracy",
            True,
            "fraction of pixels right per class; hides class imbalance",
            True,
        ),
        Metric("hd95", False, f"95th percentile symmetric surface distance ({unit})", True),
    )


def binary_metrics(points: tuple[str, ...], extra: tuple[Metric, ...] = ()) -> tuple[Metric, ...]:
    out = [Metric("auc", True, "area under the ROC curve, 95 % CI by DeLong")]
    out += extra
    for p in points:
        out.append(
            Metric(f"sensitivity@{p}", True, f"test sensitivity at the {p} threshold chosen on val")
        )
        out.append(
            Metric(f"specificity@{p}", True, f"test specificity at the {p} threshold chosen on val")
        )
    out.append(Metric("ece", False, "expected calibration error, 15 equal-width bins"))
    out.append(Metric("brier", False, "Brier score (mean squared error of the probability)"))
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


def _add(spec: TaskSpec) -> None:
    problems = spec.check()
    if problems:
        raise ValueError(f"invalid task spec {spec.name!r}: {problems}")
    TASKS.add(spec.name, spec)


# --- chest radiographs (JSRT + SCR) --------------------------------------------------------------

_add(
    TaskSpec(
        name="jsrt-anatomy",
        version=1,
        kind="multilabel-segmentation",
        classes=("lungs", "heart", "clavicles"),
        input=InputSpec((256, 256), 1),
        dataset="jsrt-scr",
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
        ),
        # JSRT: 0.175 mm pixels at 2048x2048; at 256x256 one pixel is 8 of those.
        options=(("pixel_spacing_mm", 0.175 * 2048 / 256),),
    )
)

_add(
    TaskSpec(
        name="jsrt-nodule",
        version=1,
        kind="binary",
        classes=("no-nodule", "nodule"),
        input=InputSpec((256, 256), 1),
        dataset="jsrt-scr",
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

# --- electron microscopy (ISBI 2012) -------------------------------------------------------------

_add(
    TaskSpec(
        name="isbi2012-membranes",
        version=1,
        kind="multilabel-segmentation",
        classes=("membrane",),
        input=InputSpec((512, 512), 1),
        dataset="isbi2012",
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
            Metric(
                "v_rand", True, "foreground-restricted Rand score (Arganda-Carreras et al. 2015)"
            ),
            Metric("v_info", True, "foreground-restricted information-theoretic score"),
            Metric("pixel_error", False, "fraction of pixels whose membrane label is wrong"),
            Metric("dice", True, "membrane Dice", True),
            Metric("iou", True, "membrane Jaccard index", True),
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

# --- retinal photographs -------------------------------------------------------------------------

_MESSIDOR_NOTE = (
    "stratified by DR grade 60/15/25, fixed seed; image-level: this copy has no examination ids, "
    "so a patient's two eyes may fall in different splits"
)

_add(
    TaskSpec(
        name="messidor2-referable",
        version=1,
        kind="binary",
        classes=("non-referable", "referable"),
        input=InputSpec((384, 384), 3),
        dataset="messidor2",
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
    )
)

_add(
    TaskSpec(
        name="messidor2-grading",
        version=1,
        kind="multiclass",
        classes=("no DR", "mild", "moderate", "severe", "proliferative"),
        input=InputSpec((384, 384), 3),
        dataset="messidor2",
        target="grade",
        title="Messidor-2: five-grade ICDR diabetic retinopathy",
        description="Five-class ICDR grading of fundus photographs (the APTOS/EyePACS Kaggle task), "
        "scored by quadratic weighted kappa.",
        split_file="messidor2-grading.csv",
        split_sha256="3fb4062cb70f70ad82b5f18d5c749d11e26737659a8af54f2f2b0ce254300879",
        split_note=_MESSIDOR_NOTE + "; the same split as messidor2-referable",
        metrics=(
            Metric("qwk", True, "quadratic weighted kappa of the argmax grade"),
            Metric("accuracy", True, "argmax accuracy"),
            Metric("auc", True, "macro one-vs-rest AUC"),
            Metric("recall", True, "recall per grade", True),
        ),
        primary_metric="qwk",
    )
)

_add(
    TaskSpec(
        name="retinamnist",
        version=1,
        kind="multiclass",
        classes=("0", "1", "2", "3", "4"),
        input=InputSpec((28, 28), 3),
        dataset="retinamnist",
        target="grade",
        title="RetinaMNIST (MedMNIST v2): DR grade at 28x28",
        description="Five-level diabetic retinopathy grading on 28x28 fundus images (DeepDRiD); "
        "metrics exactly as MedMNIST's evaluator (macro one-vs-rest AUC, argmax accuracy).",
        split_file="retinamnist.csv",
        split_sha256="963173e85a16e63db2da146035583719ab44001857dab69833e1f8562cacdb66",
        split_note="the official MedMNIST split stored in the file (1080/120/400)",
        metrics=(
            Metric("auc", True, "macro one-vs-rest AUC (MedMNIST getAUC)"),
            Metric("accuracy", True, "argmax accuracy (MedMNIST getACC)"),
            Metric("qwk", True, "quadratic weighted kappa"),
            Metric("recall", True, "recall per grade", True),
        ),
        primary_metric="auc",
        references=(
            Reference(
                "Yang et al. 2023 (MedMNIST v2), ResNet-18 (28)",
                "auc",
                0.717,
                "official split; ACC 0.524",
            ),
            Reference(
                "Yang et al. 2023 (MedMNIST v2), Google AutoML Vision",
                "auc",
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

# --- nuclei and cells ----------------------------------------------------------------------------

_add(
    TaskSpec(
        name="dsb2018-nuclei",
        version=1,
        kind="instance-segmentation",
        classes=("nucleus",),
        input=InputSpec(None, 3),
        dataset="dsb2018",
        target="instances",
        title="Data Science Bowl 2018: nuclei instances",
        description="Instance segmentation of nuclei across microscopy modalities (Kaggle 2018 DSB "
        "stage1_train with the community label fixes); images at native size.",
        split_file="dsb2018-nuclei.csv",
        split_sha256="14802e0545fea76ed6e5552694dd427fce43345689a93e2b7bddecee297f888e",
        split_note="stratified by image type (size x grey/colour) 65/15/20, fixed seed",
        metrics=(
            Metric(
                "dsb_ap", True, "Kaggle DSB 2018 average precision over IoU 0.50:0.95, per image"
            ),
            Metric("f1_50", True, "object F1 at IoU > 0.5"),
            Metric("dice", True, "foreground Dice", True),
        ),
        primary_metric="dsb_ap",
        policies=INSTANCE_POLICY,
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


def _ctc(name: str, dataset: str, title: str, seg: float) -> TaskSpec:
    return TaskSpec(
        name=name,
        version=1,
        kind="instance-segmentation",
        classes=("cell",),
        input=InputSpec(None, 1),
        dataset=dataset,
        target="instances",
        title=title,
        description="Cell instance segmentation from the Cell Tracking Challenge, as in the U-Net "
        "paper's cell table (SEG = the paper's IoU).",
        split_file=f"{name}.csv",
        split_sha256="5c0e7a5d6679126f29b1db30ac253eee7f58ebef4f002189fd1a4ed880e81e2c",
        split_note="by sequence: train = sequence 01 (its last 20 % of annotated frames, "
        "contiguous, validate), test = sequence 02; only frames with GT SEG masks",
        metrics=(
            Metric("seg", True, "Cell Tracking Challenge SEG (matched Jaccard, over all objects)"),
            Metric("dsb_ap", True, "DSB 2018 average precision"),
            Metric("dice", True, "foreground Dice", True),
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


_add(_ctc("ctc-u373", "ctc-u373", "CTC PhC-C2DH-U373: glioblastoma cells", 0.9203))
_add(_ctc("ctc-hela", "ctc-hela", "CTC DIC-C2DH-HeLa: HeLa cells", 0.7756))

# --- tuberculosis --------------------------------------------------------------------------------

_add(
    TaskSpec(
        name="tb-cxr",
        version=1,
        kind="binary",
        classes=("normal", "tuberculosis"),
        input=InputSpec((256, 256), 1),
        dataset="tb-nlm",
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
                Metric("auc_shenzhen", True, "AUC on the Shenzhen test images"),
                Metric("auc_montgomery", True, "AUC on the Montgomery test images"),
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
    )
)

# --- synthetic toys (the embedded default) -------------------------------------------------------

_add(
    TaskSpec(
        name="toy-anatomy",
        version=1,
        kind="multilabel-segmentation",
        classes=("disc", "bar", "spots"),
        input=InputSpec((64, 64), 1),
        dataset="toy-anatomy",
        target="anatomy",
        title="Toy: three overlapping shapes",
        description="Synthetic multi-label segmentation generated by medbench: a disc, a bar and "
        "small spots that overlap. No download; seconds on a CPU.",
        split_file="toy-anatomy.csv",
        split_sha256="27ef0b9001d121885942a6e28d9abe12634dd887030b1b52149fed9f6b2ec2a2",
        split_note="random 60/15/25, fixed seed",
        metrics=segmentation_metrics("pixels"),
        primary_metric="dice",
        policies=SEG_POLICY,
        options=(("pixel_spacing_mm", 1.0),),
    )
)

_add(
    TaskSpec(
        name="toy-lesions",
        version=2,
        kind="binary",
        classes=("clear", "lesion"),
        input=InputSpec((64, 64), 1),
        dataset="toy-lesions",
        target="lesion",
        title="Toy: faint blob present or not",
        description="Synthetic binary classification generated by medbench: textured images, half "
        "with a faint Gaussian blob. No download; seconds on a CPU.",
        split_file="toy-lesions.csv",
        split_sha256="6d2b84c1399f85532b71b6bbd30c53305067ffc2674bb7fe5cd516b3d43cefdf",
        split_note="stratified by label 60/15/25, fixed seed",
        metrics=binary_metrics(("youden",)),
        primary_metric="auc",
        policies=BINARY_POLICY,
        options=(("operating_points", YOUDEN),),
    )
)
