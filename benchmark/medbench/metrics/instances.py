"""Instance-segmentation metrics on integer label maps (0 = background, one 2-D image each).

Every metric starts from the overlap table of the two label maps, built in one pass over the
pixels with ``np.bincount`` (a contingency table), never by looping over objects with full-image
masks. Label values need not be consecutive.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_array
from scipy.sparse.csgraph import maximum_bipartite_matching

from medbench.metrics._validation import (
    check_finite,
    check_fraction,
    check_label_image,
    check_same_shape,
    warn_undefined,
)

__all__ = [
    "dsb_average_precision",
    "instance_f1",
    "seg_measure",
    "rand_scores",
    "membrane_segments",
    "label_interior",
]

# Kaggle 2018 Data Science Bowl: IoU thresholds 0.50, 0.55, ..., 0.95, written out so that each is
# the exact float of its decimal literal.
DSB_THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)

# Above this many (true x predicted) object pairs the table is built sparsely with np.unique.
_DENSE_TABLE_LIMIT = 1 << 24


class _Overlap(NamedTuple):
    """Object areas and the non-zero entries of the overlap table (objects only, no background)."""

    area_true: np.ndarray  # (k_true,) pixels per true object
    area_pred: np.ndarray  # (k_pred,) pixels per predicted object
    rows: np.ndarray  # (n_pairs,) true object index of each overlapping pair
    cols: np.ndarray  # (n_pairs,) predicted object index
    inter: np.ndarray  # (n_pairs,) pixels the pair shares

    @property
    def iou(self) -> np.ndarray:
        union = self.area_true[self.rows] + self.area_pred[self.cols] - self.inter
        return self.inter / union


def _dense_labels(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Ravelled codes 0..k (0 = background, objects in increasing label order) and k."""
    flat = labels.ravel()
    top = int(flat.max()) if flat.size else 0
    if top <= 4 * flat.size + 1024:
        # A lookup table over label values is linear time; np.unique would sort the pixels.
        flat = flat.astype(np.intp, copy=False)
        present = np.bincount(flat, minlength=top + 1) > 0
        present[0] = True
        lookup = np.cumsum(present) - 1
        return lookup[flat], int(lookup[-1])
    values, codes = np.unique(flat, return_inverse=True)
    if values[0] != 0:
        codes = codes + 1
    return codes.ravel(), int(values.size - (values[0] == 0))


def _overlap(y_true, y_pred) -> _Overlap:
    truth = check_label_image(y_true, "y_true")
    pred = check_label_image(y_pred, "y_pred")
    check_same_shape(truth, pred)
    ct, k_true = _dense_labels(truth)
    cp, k_pred = _dense_labels(pred)
    area_true = np.bincount(ct, minlength=k_true + 1)[1:]
    area_pred = np.bincount(cp, minlength=k_pred + 1)[1:]
    both = (ct > 0) & (cp > 0)
    codes = (ct[both] - 1) * k_pred + (cp[both] - 1)
    if k_true * k_pred <= _DENSE_TABLE_LIMIT:
        table = np.bincount(codes, minlength=k_true * k_pred)
        pairs = np.flatnonzero(table)
        inter = table[pairs]
    else:
        pairs, inter = np.unique(codes, return_counts=True)
    rows, cols = np.divmod(pairs, max(k_pred, 1))
    return _Overlap(area_true, area_pred, rows, cols, inter)


def dsb_average_precision(y_true, y_pred) -> float:
    """Kaggle 2018 Data Science Bowl score of one image (higher is better).

    For each IoU threshold t in 0.50, 0.55, ..., 0.95 a predicted object matches a true object
    when their IoU > t (one-to-one, as IoU > 0.5 admits at most one partner);
    ``score(t) = TP / (TP + FP + FN)``; the image score is the mean over t. Both images empty
    -> 1.0; exactly one empty -> 0.0.

    Args:
        y_true, y_pred: ``(H, W)`` integer label maps, 0 = background.

    Returns:
        Score in [0, 1].

    Reference: Caicedo et al., Nature Methods 2019 (2018 Data Science Bowl), Kaggle evaluation.
    """
    ov = _overlap(y_true, y_pred)
    n_true, n_pred = ov.area_true.size, ov.area_pred.size
    if n_true == 0 and n_pred == 0:
        return 1.0
    thresholds = np.asarray(DSB_THRESHOLDS)
    tp = (ov.iou[None, :] > thresholds[:, None]).sum(axis=1)
    # TP + FP + FN = TP + (n_pred - TP) + (n_true - TP)
    return float(np.mean(tp / (n_true + n_pred - tp)))


def _matched_count(ov: _Overlap, threshold: float) -> int:
    """Number of one-to-one matches between objects with IoU > threshold (maximum cardinality)."""
    good = ov.iou > threshold
    if threshold >= 0.5:
        # IoU > 0.5 with two partners would need more than the whole object: matches are unique.
        return int(np.count_nonzero(good))
    graph = csr_array(
        (np.ones(int(good.sum())), (ov.rows[good], ov.cols[good])),
        shape=(ov.area_true.size, ov.area_pred.size),
    )
    return int(np.count_nonzero(maximum_bipartite_matching(graph, perm_type="column") >= 0))


def instance_f1(y_true, y_pred, *, threshold: float = 0.5) -> float:
    """F1 of object detection in one image: ``2 TP / (2 TP + FP + FN)`` with objects matched one
    to one at IoU > ``threshold`` (maximum number of matches when ``threshold`` < 0.5).

    Args:
        y_true, y_pred: ``(H, W)`` integer label maps, 0 = background.
        threshold: IoU a pair must exceed to match, in [0, 1).

    Returns:
        F1 in [0, 1]; NaN with a ``RuntimeWarning`` when both images have no objects.

    Reference: Caicedo et al., Cytometry A 2019 (object-level F1 of nucleus segmentation).
    """
    threshold = check_fraction(threshold, "threshold", low_open=False)
    ov = _overlap(y_true, y_pred)
    n_objects = ov.area_true.size + ov.area_pred.size
    if n_objects == 0:
        warn_undefined("instance F1 is undefined when neither image has objects; returning NaN")
        return float("nan")
    return 2 * _matched_count(ov, threshold) / n_objects


def seg_measure(y_true, y_pred) -> tuple[float, int]:
    """Cell Tracking Challenge SEG terms of one image: ``(sum of matched Jaccard, n_true_objects)``.

    A true object R matches the predicted object S with ``|R & S| > 0.5 |R|`` (at most one);
    its score is ``Jaccard(R, S)``, else 0. The dataset SEG is the sum of the first term over
    images divided by the sum of the second (a ratio of sums, not a mean of ratios).

    Args:
        y_true, y_pred: ``(H, W)`` integer label maps, 0 = background.

    Returns:
        ``(matched_jaccard_sum, n_true_objects)``.

    Reference: Ulman et al., Nature Methods 2017; Maska et al., Bioinformatics 2014.
    """
    ov = _overlap(y_true, y_pred)
    matched = ov.inter > 0.5 * ov.area_true[ov.rows]
    return float(ov.iou[matched].sum()), int(ov.area_true.size)


def _entropy(sizes: np.ndarray, n: int) -> float:
    """Entropy (nats) of a partition of n pixels into segments of the given sizes."""
    sizes = sizes[sizes > 0].astype(np.float64)
    return float(np.log(n) - (sizes * np.log(sizes)).sum() / n)


def rand_scores(
    y_true, y_pred, *, normalization: Literal["n2", "pairs"] = "n2"
) -> tuple[float, float]:
    """Foreground-restricted Rand and information scores of the ISBI 2012 challenge.

    Only pixels whose TRUE label is > 0 count (membranes/background of the truth are ignored).
    Predicted labels are used as given, except that predicted label 0 (e.g. membrane) inside the
    true foreground is treated as singletons, one segment per pixel, as in the official Fiji
    script (``RandError.foregroundRestrictedStatsN2`` / ``VariationOfInformation``). With p_ij
    the fraction of counted pixels with true label i and predicted label j, t_i and s_j the
    marginals:

        V_rand = harmonic mean of split sum p_ij^2 / sum t_i^2 and merge sum p_ij^2 / sum s_j^2
               = 2 sum p_ij^2 / (sum t_i^2 + sum s_j^2)
        V_info = harmonic mean of split I(S;T) / H(S) and merge I(S;T) / H(T)
               = 2 I(S;T) / (H(S) + H(T))

    Identical partitions give 1.0 for both, also when both are one segment (H = 0, where the
    Fiji script returns 0 for V_info). No border thinning is applied to the prediction (the
    official scores thin predicted membranes to one pixel first).

    ``normalization="pairs"`` counts distinct pixel pairs (squares ``x^2`` become ``x(x-1)``) for
    V_rand, the convention of ``skimage.metrics.adapted_rand_error`` (SNEMI3D); then
    ``V_rand == 1 - adapted_rand_error(y_true, y_pred)[0]`` whenever the prediction has no label
    0 inside the true foreground (skimage counts predicted 0 as one segment, not singletons).

    Args:
        y_true, y_pred: ``(H, W)`` integer label maps; truth 0 = ignored (membrane).
        normalization: ``"n2"`` (ISBI 2012, self-pairs counted) or ``"pairs"`` (skimage).

    Returns:
        ``(v_rand, v_info)`` in [0, 1]; NaN with a ``RuntimeWarning`` when the truth has no
        foreground (or, with ``"pairs"``, no pair of pixels sharing a segment).

    Reference: Arganda-Carreras et al., Frontiers in Neuroanatomy 2015.
    """
    if normalization not in ("n2", "pairs"):
        raise ValueError(f"normalization must be 'n2' or 'pairs'; got {normalization!r}")
    ov = _overlap(y_true, y_pred)
    n = int(ov.area_true.sum())
    if n == 0:
        warn_undefined("Rand scores are undefined when y_true has no foreground; returning NaN")
        return float("nan"), float("nan")
    a = ov.area_true.astype(np.float64)
    p = ov.inter.astype(np.float64)
    b = np.bincount(ov.cols, weights=p, minlength=ov.area_pred.size)
    singletons = n - p.sum()  # true-foreground pixels predicted as label 0
    sum_a, sum_b, sum_ab = (a * a).sum(), (b * b).sum() + singletons, (p * p).sum() + singletons
    if normalization == "pairs":
        sum_a, sum_b, sum_ab = sum_a - n, sum_b - n, sum_ab - n
    if sum_a + sum_b == 0:
        warn_undefined("V_rand is undefined: no two counted pixels share a segment; returning NaN")
        v_rand = float("nan")
    else:
        v_rand = float(2 * sum_ab / (sum_a + sum_b))
    # Singletons add nothing to sum(c log c), so entropies need only the segments of size >= 2.
    h_true, h_pred, h_joint = _entropy(a, n), _entropy(b, n), _entropy(p, n)
    mutual = h_true + h_pred - h_joint
    v_info = 1.0 if h_true + h_pred == 0 else float(2 * mutual / (h_true + h_pred))
    return v_rand, min(max(v_info, 0.0), 1.0)


def label_interior(mask) -> np.ndarray:
    """4-connected components of a boolean interior mask, labelled 1..k (0 elsewhere).

    Args:
        mask: ``(H, W)`` boolean, True = cell interior.

    Returns:
        ``(H, W)`` int32 label map.
    """
    arr = np.asarray(mask)
    if arr.ndim != 2 or arr.dtype != bool:
        raise ValueError(
            f"mask must be a 2-D boolean array; got shape {arr.shape} and dtype {arr.dtype}"
        )
    # 4-connectivity: membranes one pixel thick separate cells only if diagonals do not connect.
    labels, _ = ndimage.label(arr, structure=ndimage.generate_binary_structure(2, 1))
    return labels.astype(np.int32)


def membrane_segments(prob, *, threshold: float = 0.5) -> np.ndarray:
    """Segments of a membrane probability map: cell interior = ``prob < threshold``, labelled by
    4-connected components 1..k; membrane pixels are 0.

    Args:
        prob: ``(H, W)`` membrane probability (or a 0/1 membrane mask).
        threshold: interior where ``prob < threshold``.

    Returns:
        ``(H, W)`` int32 label map, for :func:`rand_scores`.

    Reference: Arganda-Carreras et al. 2015 (ISBI 2012: segments are the connected components of
    the thresholded map).
    """
    arr = np.asarray(prob)
    if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(
            f"prob must be a 2-D numeric map with shape (H, W); got shape {arr.shape} and dtype "
            f"{arr.dtype}"
        )
    check_finite(arr.astype(np.float64), "prob")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.number):
        raise ValueError(f"threshold must be a number; got {threshold!r}")
    return label_interior(arr < threshold)
