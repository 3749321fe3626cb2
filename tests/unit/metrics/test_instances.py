"""Instance metrics on label maps: hand-computed cases, brute-force object-by-object versions,
parity with scikit-image's adapted Rand error, NaN policies and error messages."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import ndimage
from skimage.metrics import adapted_rand_error

from medbench import metrics as M

THRESHOLDS = np.arange(10) * 0.05 + 0.5


def _random_labels(rng: np.random.Generator, shape=(40, 40), n_blobs=12, scale=1, offset=0):
    """Overlapping rectangles of random size; labels multiplied/offset to be non-consecutive."""
    img = np.zeros(shape, np.int64)
    for k in range(1, n_blobs + 1):
        y, x = rng.integers(0, shape[0] - 3), rng.integers(0, shape[1] - 3)
        h, w = rng.integers(2, 10, size=2)
        img[y : y + h, x : x + w] = k * scale + offset
    return img


def _iou_brute_force(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Full IoU matrix from one full-image mask per object (slow, obviously correct)."""
    t_ids = [v for v in np.unique(truth) if v != 0]
    p_ids = [v for v in np.unique(pred) if v != 0]
    iou = np.zeros((len(t_ids), len(p_ids)))
    for i, a in enumerate(t_ids):
        for j, b in enumerate(p_ids):
            ma, mb = truth == a, pred == b
            iou[i, j] = (ma & mb).sum() / (ma | mb).sum()
    return iou


def _dsb_brute_force(truth: np.ndarray, pred: np.ndarray) -> float:
    iou = _iou_brute_force(truth, pred)
    n_true, n_pred = iou.shape
    if n_true == 0 and n_pred == 0:
        return 1.0
    scores = []
    for t in THRESHOLDS:
        t = round(float(t), 2)
        matches = iou > t
        tp = int(matches.sum())
        fp = int((~matches.any(axis=0)).sum())
        fn = int((~matches.any(axis=1)).sum())
        scores.append(tp / (tp + fp + fn))
    return float(np.mean(scores))


# --- DSB average precision -----------------------------------------------------------------------


def test_dsb_hand_computed():
    truth = np.zeros((1, 10), int)
    pred = np.zeros((1, 10), int)
    truth[0, 0:6] = 1
    pred[0, 1:6] = 7  # 5 / 6 shared... IoU 5/6 = 0.833: matched for t < 0.833
    assert M.dsb_average_precision(truth, pred) == pytest.approx(7 / 10)
    pred[0] = 0
    pred[0, 2:8] = 3  # |T & P| = 4, |T | P| = 8: IoU 0.5, not > 0.5 (the rule is strict)
    assert M.dsb_average_precision(truth, pred) == 0.0
    pred[0] = 0
    pred[0, 0:5] = 3  # IoU 5/6, plus an unmatched false positive
    pred[0, 8:10] = 4
    # matched thresholds (0.5..0.8, 7 of 10): 1 / (1 + 1 + 0) each; others 0 / (0 + 2 + 1)
    assert M.dsb_average_precision(truth, pred) == pytest.approx(7 * 0.5 / 10)


def test_dsb_empty_images():
    empty = np.zeros((4, 4), int)
    some = np.zeros((4, 4), int)
    some[1:3, 1:3] = 5
    assert M.dsb_average_precision(empty, empty) == 1.0
    assert M.dsb_average_precision(some, empty) == 0.0
    assert M.dsb_average_precision(empty, some) == 0.0


@pytest.mark.parametrize("seed", range(6))
def test_dsb_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    truth = _random_labels(rng, scale=3, offset=100)
    # A perturbed copy: shifted, some objects relabelled, plus new blobs.
    pred = np.roll(truth, rng.integers(-2, 3), axis=int(rng.integers(0, 2)))
    pred = np.where(rng.random(pred.shape) < 0.05, 0, pred)
    extra = _random_labels(rng, n_blobs=3, scale=1000)
    pred = np.where(extra > 0, extra, pred)
    assert M.dsb_average_precision(truth, pred) == pytest.approx(_dsb_brute_force(truth, pred))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.uint64])
def test_dsb_label_values_and_dtypes(dtype):
    rng = np.random.default_rng(0)
    truth = _random_labels(rng, n_blobs=8)
    pred = np.roll(truth, 1, axis=0)
    expected = _dsb_brute_force(truth, pred)
    assert M.dsb_average_precision(truth.astype(dtype), pred.astype(dtype)) == pytest.approx(
        expected
    )
    # Huge, sparse label values take the sorting path instead of a lookup table.
    big_t = np.where(truth > 0, truth + 2**40, 0)
    big_p = np.where(pred > 0, pred * 2**33, 0)
    assert M.dsb_average_precision(big_t, big_p) == pytest.approx(expected)


def test_dsb_invariant_to_relabelling():
    rng = np.random.default_rng(1)
    truth = _random_labels(rng)
    pred = np.roll(truth, 1, axis=1)
    perm = np.concatenate([[0], rng.permutation(np.arange(1, truth.max() + 1)) + 50])
    assert M.dsb_average_precision(truth, perm[pred]) == M.dsb_average_precision(truth, pred)


@pytest.mark.parametrize(
    ("truth", "pred", "message"),
    [
        (
            np.zeros((3, 3), int),
            np.zeros((3, 4), int),
            r"y_true and y_pred must have the same shape; got \(3, 3\) and \(3, 4\)",
        ),
        (
            np.zeros((1, 3, 3), int),
            np.zeros((1, 3, 3), int),
            r"y_true must be a 2-D label image with shape \(H, W\); got shape \(1, 3, 3\)",
        ),
        (
            np.zeros((3, 3), int),
            np.zeros((3, 3)),
            r"y_pred must hold integer labels; got dtype float64",
        ),
        (
            np.zeros((3, 3), int),
            -np.ones((3, 3), int),
            r"y_pred must hold non-negative labels \(0 = background\); got values \[-1\]",
        ),
    ],
)
def test_label_image_errors(truth, pred, message):
    for fn in (M.dsb_average_precision, M.instance_f1, M.seg_measure, M.rand_scores):
        with pytest.raises(ValueError, match=message):
            fn(truth, pred)


# --- instance F1 ---------------------------------------------------------------------------------


def _f1_brute_force(truth: np.ndarray, pred: np.ndarray, threshold: float) -> float:
    """Best one-to-one matching by trying every assignment (tiny inputs only)."""
    good = _iou_brute_force(truth, pred) > threshold
    n_true, n_pred = good.shape
    best = 0
    if n_true <= n_pred:
        for cols in itertools.permutations(range(n_pred), n_true):
            best = max(best, sum(good[i, c] for i, c in enumerate(cols)))
    else:
        for rows in itertools.permutations(range(n_true), n_pred):
            best = max(best, sum(good[r, j] for j, r in enumerate(rows)))
    return 2 * best / (n_true + n_pred)


def test_instance_f1_hand_computed():
    truth = np.zeros((1, 12), int)
    pred = np.zeros((1, 12), int)
    truth[0, 0:4], truth[0, 6:10] = 1, 2
    pred[0, 0:4] = 9  # matches object 1 exactly
    pred[0, 8:12] = 4  # IoU with object 2: 2 / 6
    assert M.instance_f1(truth, pred) == pytest.approx(2 * 1 / 4)
    assert M.instance_f1(truth, pred, threshold=0.3) == pytest.approx(1.0)


@pytest.mark.parametrize("threshold", [0.0, 0.1, 0.3, 0.5, 0.7])
@pytest.mark.parametrize("seed", range(4))
def test_instance_f1_matches_brute_force(seed, threshold):
    rng = np.random.default_rng(seed)
    truth = _random_labels(rng, shape=(16, 16), n_blobs=5)
    pred = _random_labels(rng, shape=(16, 16), n_blobs=5, scale=2)
    expected = _f1_brute_force(truth, pred, threshold)
    assert M.instance_f1(truth, pred, threshold=threshold) == pytest.approx(expected)


def test_instance_f1_both_empty_is_nan_and_bad_threshold():
    empty = np.zeros((3, 3), int)
    with pytest.warns(RuntimeWarning, match="neither image has objects"):
        assert math.isnan(M.instance_f1(empty, empty))
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\); got 1.0"):
        M.instance_f1(empty, empty, threshold=1.0)


# --- SEG -----------------------------------------------------------------------------------------


def test_seg_measure_hand_computed():
    truth = np.zeros((2, 10), int)
    pred = np.zeros((2, 10), int)
    truth[0, 0:10] = 1  # R1: 10 pixels
    pred[0, 0:6] = 5
    pred[1, 0:2] = 5  # S covers 6 of R1 (> 5) plus 2 outside: Jaccard 6 / 12
    truth[1, 4:10] = 2  # R2: 6 pixels
    pred[1, 7:10] = 6  # covers exactly half of R2: not a match (the rule is strict)
    total, n_objects = M.seg_measure(truth, pred)
    assert total == pytest.approx(0.5)
    assert n_objects == 2


def _seg_brute_force(truth: np.ndarray, pred: np.ndarray) -> tuple[float, int]:
    total = 0.0
    ids = [v for v in np.unique(truth) if v != 0]
    for r in ids:
        mr = truth == r
        for s in np.unique(pred[mr]):
            ms = pred == s
            if s != 0 and (mr & ms).sum() > 0.5 * mr.sum():
                total += (mr & ms).sum() / (mr | ms).sum()
    return total, len(ids)


@pytest.mark.parametrize("seed", range(5))
def test_seg_measure_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    truth = _random_labels(rng, scale=2)
    pred = np.roll(truth, 1, axis=0) * 3
    pred = np.where(rng.random(pred.shape) < 0.1, 0, pred)
    total, n = M.seg_measure(truth, pred)
    expected_total, expected_n = _seg_brute_force(truth, pred)
    assert total == pytest.approx(expected_total) and n == expected_n
    assert M.seg_measure(truth, truth) == (pytest.approx(float(len(np.unique(truth)) - 1)), n)


def test_seg_measure_without_true_objects():
    assert M.seg_measure(np.zeros((3, 3), int), np.ones((3, 3), int)) == (0.0, 0)


# --- Rand scores ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("truth", "pred", "v_rand", "v_info"),
    [
        # One true segment split in two halves: sums 16 (truth), 8 (pred), 8 (joint).
        ([[1, 1, 1, 1]], [[1, 1, 2, 2]], 16 / 24, 0.0),
        # Two true segments merged into one.
        ([[1, 1, 2, 2]], [[7, 7, 7, 7]], 16 / 24, 0.0),
        # Predicted 0 inside the truth counts as singletons: truth sums 8, pred 4 + 2, joint 4 + 2;
        # H(T) = log 2, H(S) = H(S, T) = 1.5 log 2, I = log 2.
        ([[1, 1, 2, 2]], [[5, 5, 0, 0]], 12 / 14, 0.8),
        # Truth label 0 is ignored whatever is predicted there.
        ([[0, 1, 1, 0, 2, 2]], [[3, 1, 1, 4, 2, 2]], 1.0, 1.0),
    ],
)
def test_rand_scores_hand_computed(truth, pred, v_rand, v_info):
    got = M.rand_scores(np.array(truth), np.array(pred))
    assert got == (pytest.approx(v_rand), pytest.approx(v_info, abs=1e-12))


def test_rand_scores_perfect_and_relabelled_prediction_is_one():
    rng = np.random.default_rng(0)
    truth = M.label_interior(rng.random((30, 30)) < 0.6)
    assert truth.max() > 3
    relabelled = np.where(truth > 0, truth * 7 + 3, 0)
    assert M.rand_scores(truth, relabelled) == (pytest.approx(1.0), pytest.approx(1.0))
    one_segment = np.ones((4, 4), int)
    assert M.rand_scores(one_segment, 2 * one_segment) == (1.0, 1.0)


@pytest.mark.parametrize("seed", range(6))
def test_rand_scores_match_skimage_adapted_rand_with_pair_counting(seed):
    rng = np.random.default_rng(seed)
    truth = _random_labels(rng, n_blobs=10)
    # Prediction labels every pixel (no 0 inside the truth), the convention skimage shares.
    pred = _random_labels(rng, n_blobs=10) + 1
    v_rand, _ = M.rand_scores(truth, pred, normalization="pairs")
    assert v_rand == pytest.approx(1 - adapted_rand_error(truth, pred)[0], abs=1e-12)
    # The ISBI normalisation counts self-pairs, so it differs (slightly) from skimage's.
    assert M.rand_scores(truth, pred)[0] != pytest.approx(v_rand, abs=1e-9)


def _v_info_direct(truth: np.ndarray, pred: np.ndarray) -> float:
    """I(S;T) / entropies from the joint histogram, singletons given unique new labels."""
    fg = truth > 0
    t, p = truth[fg], pred[fg].astype(np.int64)
    zeros = p == 0
    p[zeros] = p.max() + 1 + np.arange(zeros.sum())  # each predicted-0 pixel its own segment

    def entropy(labels):
        _, counts = np.unique(labels, return_counts=True, axis=0)
        q = counts / counts.sum()
        return -(q * np.log(q)).sum()

    h_t, h_s, h_ts = entropy(t), entropy(p), entropy(np.stack([t, p], axis=1))
    return 2 * (h_t + h_s - h_ts) / (h_t + h_s)


@pytest.mark.parametrize("seed", range(4))
def test_v_info_matches_direct_entropies(seed):
    rng = np.random.default_rng(seed)
    truth = _random_labels(rng, n_blobs=10)
    pred = np.where(rng.random(truth.shape) < 0.1, 0, np.roll(truth, 1, axis=0))
    assert M.rand_scores(truth, pred)[1] == pytest.approx(_v_info_direct(truth, pred))


def test_rand_scores_undefined_and_errors():
    with pytest.warns(RuntimeWarning, match="y_true has no foreground"):
        assert all(map(math.isnan, M.rand_scores(np.zeros((3, 3), int), np.ones((3, 3), int))))
    with pytest.warns(RuntimeWarning, match="no two counted pixels share a segment"):
        v_rand, _ = M.rand_scores(np.array([[1, 0]]), np.array([[1, 0]]), normalization="pairs")
    assert math.isnan(v_rand)
    with pytest.raises(ValueError, match=r"normalization must be 'n2' or 'pairs'; got 'N2'"):
        M.rand_scores(np.ones((2, 2), int), np.ones((2, 2), int), normalization="N2")


# --- membrane segments ---------------------------------------------------------------------------


def test_membrane_segments_hand_computed():
    prob = np.array(
        [
            [0.1, 0.2, 0.9, 0.1],
            [0.9, 0.9, 0.9, 0.1],
            [0.2, 0.9, 0.5, 0.9],
            [0.1, 0.9, 0.1, 0.1],
        ]
    )
    labels = M.membrane_segments(prob)
    # Interior is prob < 0.5 (0.5 itself is membrane); diagonal contact does not connect.
    expected = np.array([[1, 1, 0, 2], [0, 0, 0, 2], [3, 0, 0, 0], [3, 0, 4, 4]])
    np.testing.assert_array_equal(labels, expected)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(
        M.membrane_segments(prob, threshold=0.95) > 0, np.ones((4, 4), bool)
    )


def test_label_interior_matches_scipy_four_connectivity():
    rng = np.random.default_rng(0)
    mask = rng.random((20, 20)) < 0.5
    expected, n = ndimage.label(mask)
    labels = M.label_interior(mask)
    assert labels.max() == n
    np.testing.assert_array_equal(labels, expected)


def test_membrane_segments_errors():
    with pytest.raises(
        ValueError, match=r"prob must be a 2-D numeric map with shape \(H, W\); got shape \(2,\)"
    ):
        M.membrane_segments(np.zeros(2))
    with pytest.raises(ValueError, match=r"prob must be finite; got 1 NaN or infinite values"):
        M.membrane_segments(np.array([[0.1, np.nan]]))
    with pytest.raises(
        ValueError, match=r"mask must be a 2-D boolean array; got shape \(2, 2\) and dtype int64"
    ):
        M.label_interior(np.zeros((2, 2), np.int64))
