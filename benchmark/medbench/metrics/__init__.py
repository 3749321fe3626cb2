"""Metrics of medbench tasks: pure functions of numpy arrays, truth first, options keyword-only.

Undefined values (AUC with one class, Dice with both masks empty, ...) are NaN with an
``UndefinedMetricWarning`` (a ``RuntimeWarning``), never 0; invalid input raises ``ValueError`` naming the rule and the values
seen. This package imports nothing else from medbench.

Modules: ``ranking`` (AUC, DeLong, operating points), ``classification`` (labels, kappa,
multi-class AUC), ``calibration`` (ECE, Brier), ``segmentation`` (Dice, IoU, hd95),
``instances`` (DSB AP, F1, SEG, Rand scores), ``statistics`` (bootstrap, Holm, rank intervals).
"""

from medbench.metrics._validation import UndefinedMetricWarning
from medbench.metrics.calibration import (
    N_BINS,
    brier_score,
    calibration_bins,
    expected_calibration_error,
)
from medbench.metrics.classification import (
    accuracy,
    multiclass_auc,
    per_class_recall,
    quadratic_weighted_kappa,
    resampled_multiclass_auc,
    sensitivity_specificity,
)
from medbench.metrics.instances import (
    dsb_average_precision,
    instance_f1,
    label_interior,
    membrane_segments,
    rand_scores,
    seg_measure,
)
from medbench.metrics.ranking import (
    delong_ci,
    delong_test,
    operating_point,
    resampled_roc_auc,
    roc_auc,
    roc_curve,
)
from medbench.metrics.segmentation import dice, hd95, iou, pixel_accuracy
from medbench.metrics.statistics import (
    PairedResult,
    bootstrap_ci,
    bootstrap_statistic,
    case_counts,
    holm,
    paired_bootstrap,
    rank_intervals,
    resample_indices,
)

__all__ = [
    "UndefinedMetricWarning",
    # ranking
    "roc_auc",
    "resampled_roc_auc",
    "delong_ci",
    "delong_test",
    "operating_point",
    "roc_curve",
    # classification
    "sensitivity_specificity",
    "accuracy",
    "per_class_recall",
    "quadratic_weighted_kappa",
    "multiclass_auc",
    "resampled_multiclass_auc",
    # calibration
    "expected_calibration_error",
    "brier_score",
    "calibration_bins",
    "N_BINS",
    # segmentation
    "dice",
    "iou",
    "pixel_accuracy",
    "hd95",
    # instances
    "dsb_average_precision",
    "instance_f1",
    "seg_measure",
    "rand_scores",
    "membrane_segments",
    "label_interior",
    # statistics
    "bootstrap_ci",
    "bootstrap_statistic",
    "case_counts",
    "resample_indices",
    "paired_bootstrap",
    "PairedResult",
    "holm",
    "rank_intervals",
]
