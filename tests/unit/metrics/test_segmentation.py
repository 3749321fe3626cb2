"""Dice, IoU, pixel accuracy and hd95 on (n, C, H, W) masks: hand-computed cases, direct
formulas, a brute-force surface distance, NaN policies and error messages."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from medbench import metrics as M


def _masks(rows: list[str]) -> np.ndarray:
    """A 2-D mask from strings of '#' (True) and '.' (False)."""
    return np.array([[c == "#" for c in row] for row in rows])


def _stack(*masks: np.ndarray) -> np.ndarray:
    """One case with the given masks as classes: (1, C, H, W)."""
    return np.stack(masks)[None]


# --- Dice / IoU ----------------------------------------------------------------------------------


def test_dice_and_iou_hand_computed():
    truth = _stack(
        _masks(["##..", "##..", "....", "...."]), _masks(["#...", "....", "....", "...."])
    )
    pred = _stack(
        _masks([".##.", ".##.", "....", "...."]), _masks(["#...", "....", "....", "...."])
    )
    # Class 0: |T| = 4, |P| = 4, |T & P| = 2 -> Dice 4/8, IoU 2/6. Class 1: identical.
    np.testing.assert_allclose(M.dice(truth, pred), [[0.5, 1.0]])
    np.testing.assert_allclose(M.iou(truth, pred), [[1 / 3, 1.0]])


def test_empty_truth_policy():
    empty = np.zeros((2, 2), bool)
    some = _masks(["#.", ".."])
    truth = np.stack([_stack(empty, empty)[0], _stack(some, empty)[0]])
    pred = np.stack([_stack(empty, some)[0], _stack(some, empty)[0]])
    with pytest.warns(RuntimeWarning, match=r"both empty: 2 of 4 \(case, class\) pairs set to NaN"):
        d = M.dice(truth, pred)
    # case 0: class 0 both empty -> NaN; class 1 truth empty, prediction not -> 0.
    assert math.isnan(d[0, 0]) and d[0, 1] == 0.0
    assert d[1, 0] == 1.0 and math.isnan(d[1, 1])
    with pytest.warns(
        RuntimeWarning, match="IoU is undefined where truth and prediction are both empty"
    ):
        j = M.iou(truth, pred)
    np.testing.assert_array_equal(np.isnan(j), np.isnan(d))
    assert j[0, 1] == 0.0


@pytest.mark.parametrize("shape", [(6, 3, 16, 16), (4, 2, 5, 7), (3, 1, 1, 9)])
def test_dice_iou_match_direct_formulas(shape):
    # 16 x 16 takes the 64-bit popcount path, 5 x 7 and 1 x 9 the plain count.
    rng = np.random.default_rng(sum(shape))
    truth = rng.random(shape) < 0.4
    pred = rng.random(shape) < 0.4
    inter = (truth & pred).sum(axis=(2, 3))
    t, p = truth.sum(axis=(2, 3)), pred.sum(axis=(2, 3))
    np.testing.assert_allclose(M.dice(truth, pred), 2 * inter / (t + p))
    np.testing.assert_allclose(M.iou(truth, pred), inter / (t + p - inter))


def test_dice_on_non_contiguous_views():
    rng = np.random.default_rng(0)
    truth = rng.random((3, 2, 16, 32)) < 0.5
    pred = rng.random((3, 2, 16, 32)) < 0.5
    view_t, view_p = truth[:, :, :, ::2], pred[:, :, :, ::2]
    np.testing.assert_allclose(M.dice(view_t, view_p), M.dice(view_t.copy(), view_p.copy()))


def test_dice_accepts_zero_one_integers():
    truth = np.array([[[[1, 0], [0, 1]]]], dtype=np.uint8)
    pred = np.array([[[[1, 1], [0, 0]]]], dtype=np.int64)
    np.testing.assert_allclose(M.dice(truth, pred), [[0.5]])


@pytest.mark.parametrize(
    ("truth", "pred", "message"),
    [
        (
            np.zeros((1, 1, 4, 4), bool),
            np.zeros((1, 1, 4, 5), bool),
            r"y_true and y_pred must have the same shape; got \(1, 1, 4, 4\) and \(1, 1, 4, 5\)",
        ),
        (
            np.zeros((1, 4, 4), bool),
            np.zeros((1, 4, 4), bool),
            r"y_true must have shape \(n_cases, n_classes, H, W\); got shape \(1, 4, 4\)",
        ),
        (
            np.zeros((1, 1, 2, 2), bool),
            np.full((1, 1, 2, 2), 0.5),
            r"y_pred must be a boolean mask \(or hold only 0 and 1\); got dtype float64 with values \[0.5\]",
        ),
    ],
)
def test_mask_errors(truth, pred, message):
    for fn in (M.dice, M.iou, M.pixel_accuracy, M.hd95):
        with pytest.raises(ValueError, match=message):
            fn(truth, pred)


# --- pixel accuracy ------------------------------------------------------------------------------


def test_pixel_accuracy_hand_computed():
    truth = _stack(_masks(["##", ".."]), np.zeros((2, 2), bool))
    pred = _stack(_masks(["#.", "#."]), np.zeros((2, 2), bool))
    # Class 0 differs at 2 of 4 pixels; class 1 is empty in both: accuracy 1 (always defined).
    np.testing.assert_allclose(M.pixel_accuracy(truth, pred), [[0.5, 1.0]])


# --- hd95 ----------------------------------------------------------------------------------------


def _surface_points(mask: np.ndarray) -> np.ndarray:
    """Coordinates of mask pixels with a 4-neighbour outside the mask or outside the image."""
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return np.argwhere(mask & ~inner).astype(np.float64)


def _hd95_brute_force(truth: np.ndarray, pred: np.ndarray, spacing: tuple[float, float]) -> float:
    st = _surface_points(truth) * spacing
    sp = _surface_points(pred) * spacing
    d = cdist(st, sp)  # all pairwise Euclidean distances
    return max(np.percentile(d.min(axis=1), 95), np.percentile(d.min(axis=0), 95))


def test_hd95_hand_computed():
    truth = np.zeros((1, 1, 3, 5), bool)
    pred = np.zeros((1, 1, 3, 5), bool)
    truth[0, 0, 1, 0] = True
    pred[0, 0, 1, 3] = True
    assert M.hd95(truth, pred)[0, 0] == 3.0
    # Spacing is (row, column): the 3-pixel horizontal gap is 3 * 2.0 mm.
    assert M.hd95(truth, pred, spacing=(0.5, 2.0))[0, 0] == 6.0
    assert M.hd95(truth, truth)[0, 0] == 0.0


@pytest.mark.parametrize("spacing", [1.0, (2.0, 0.5), 0.7])
@pytest.mark.parametrize("seed", range(4))
def test_hd95_matches_brute_force(seed, spacing):
    rng = np.random.default_rng(seed)
    truth = rng.random((2, 2, 12, 15)) < 0.5
    pred = rng.random((2, 2, 12, 15)) < 0.3
    got = M.hd95(truth, pred, spacing=spacing)
    pair = (spacing, spacing) if isinstance(spacing, float) else spacing
    for i in range(2):
        for j in range(2):
            assert got[i, j] == pytest.approx(_hd95_brute_force(truth[i, j], pred[i, j], pair))


def test_hd95_is_nan_where_either_mask_is_empty():
    truth = np.zeros((1, 2, 4, 4), bool)
    pred = np.zeros((1, 2, 4, 4), bool)
    truth[0, 0, 1, 1] = True  # class 0: prediction empty; class 1: both empty
    with pytest.warns(RuntimeWarning, match=r"truth or prediction is empty: 2 of 2"):
        assert np.isnan(M.hd95(truth, pred)).all()


@pytest.mark.parametrize("spacing", [0, -1.0, (1.0, 2.0, 3.0), float("nan"), "1"])
def test_hd95_rejects_bad_spacing(spacing):
    masks = np.ones((1, 1, 2, 2), bool)
    with pytest.raises((ValueError,), match="spacing must be a positive number or a pair"):
        M.hd95(masks, masks, spacing=spacing)


def test_boolean_masks_with_any_nonzero_byte_count_as_true():
    # numpy takes any nonzero byte as True; a popcount of 0xFF would count 8 pixels for one.
    rng = np.random.default_rng(4)
    clean = rng.random((2, 3, 16, 16)) > 0.5
    loud = (clean * 255).astype(np.uint8).view(bool)
    assert np.array_equal(loud, clean)  # the same mask to numpy
    for metric in (M.dice, M.iou, M.pixel_accuracy):
        np.testing.assert_array_equal(metric(loud, loud), metric(clean, clean))
        np.testing.assert_array_equal(metric(clean, loud), metric(clean, clean))
    assert np.all(M.dice(loud, loud)[~np.isnan(M.dice(loud, loud))] == 1.0)  # MONAI gives 1.0


def test_scoring_a_file_of_such_masks_gives_the_clean_score(tmp_path):
    from medbench.data.prepare import prepare
    from medbench.predictions import read_predictions, validate
    from medbench.scoring import score

    prepared = prepare("toy-anatomy")
    test = prepared.split("test")
    truth = np.asarray(test.targets)
    flipped = truth.copy()
    flipped[:, :, :4] = ~flipped[:, :, :4]  # a few rows wrong, so Dice is below 1
    clean = tmp_path / "clean.npz"
    loud = tmp_path / "loud.npz"
    np.savez(clean, **dict(zip(test.case_ids, flipped, strict=True)))
    np.savez(
        loud,
        **{
            c: (m * 255).astype(np.uint8).view(bool)
            for c, m in zip(test.case_ids, flipped, strict=True)
        },
    )
    scores = []
    for path in (clean, loud):
        preds = validate(prepared.spec, read_predictions(path, prepared.spec), test.case_ids)
        scores.append(score(prepared.spec, preds, truth, test.cases).summary["dice"].value)
    assert scores[0] == scores[1] < 1.0
