"""Speed of the metrics at leaderboard scale (target: each under 1 s on one core).

Run with ``pytest tests/bench --benchmark-enable``; with benchmarks disabled (the default in
pyproject) each body runs once, so the correctness assertions still run.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medbench import metrics as M


def test_bench_auc_and_delong_ci_100k(benchmark):
    rng = np.random.default_rng(0)
    n = 100_000
    y = rng.integers(0, 2, n)
    s = np.round(rng.normal(size=n) + 0.8 * y, 3)  # rounding leaves many ties

    def auc_with_ci():
        return M.roc_auc(y, s), M.delong_ci(y, s)

    auc, (low, high) = benchmark(auc_with_ci)
    assert auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert low < auc < high
    # DeLong's standard error of an AUC near 0.72 on 50k + 50k cases is about 0.0016.
    assert 0.004 < high - low < 0.009


def test_bench_bootstrap_ci_mean_dice_1000_cases(benchmark):
    rng = np.random.default_rng(1)
    per_case = rng.beta(8, 2, size=1000)
    per_case[rng.random(1000) < 0.05] = np.nan  # undefined cases are dropped
    low, high = benchmark(M.bootstrap_ci, per_case, n_resamples=2000)
    defined = per_case[~np.isnan(per_case)]
    half = 1.96 * defined.std(ddof=1) / np.sqrt(defined.size)
    assert low < np.mean(defined) < high
    assert low == pytest.approx(defined.mean() - half, abs=0.002)
    assert high == pytest.approx(defined.mean() + half, abs=0.002)


@pytest.fixture(scope="module")
def big_masks():
    rng = np.random.default_rng(2)
    shape = (1000, 3, 256, 256)
    size = int(np.prod(shape))
    # Random bytes thresholded: about 30 % foreground, built without a float array of this size.
    truth = (np.frombuffer(rng.bytes(size), np.uint8) < 77).reshape(shape)
    pred = (np.frombuffer(rng.bytes(size), np.uint8) < 77).reshape(shape)
    return truth, pred


def test_bench_dice_iou_1000x3x256x256(benchmark, big_masks):
    truth, pred = big_masks
    d, j = benchmark(lambda: (M.dice(truth, pred), M.iou(truth, pred)))
    assert d.shape == j.shape == (1000, 3)
    for i in (0, 499, 999):
        inter = (truth[i] & pred[i]).sum(axis=(1, 2))
        t, p = truth[i].sum(axis=(1, 2)), pred[i].sum(axis=(1, 2))
        np.testing.assert_allclose(d[i], 2 * inter / (t + p))
        np.testing.assert_allclose(j[i], inter / (t + p - inter))
    # Independent 30 % masks: Dice close to 0.3.
    assert abs(float(d.mean()) - 0.3) < 0.005


def _grid_instances():
    """500 square objects (20 x 20) on a 25 x 20 grid of 40 x 50 cells in a 1000 x 1000 image.

    Prediction: objects 1..50 missing (FN), 51..150 shifted one pixel (IoU 380/420 = 0.905),
    the rest exact, and 30 extra 5 x 5 objects (FP).
    """
    truth = np.zeros((1000, 1000), np.int32)
    pred = np.zeros((1000, 1000), np.int32)
    label = 0
    for row in range(25):
        for col in range(20):
            label += 1
            y, x = row * 40 + 5, col * 50 + 5
            truth[y : y + 20, x : x + 20] = label
            shift = 1 if 50 < label <= 150 else 0
            if label > 50:
                pred[y : y + 20, x + shift : x + shift + 20] = label + 7000
            if label <= 30:
                pred[y + 28 : y + 33, x + 30 : x + 35] = 9000 + label
    return truth, pred


def test_bench_dsb_average_precision_500_objects(benchmark):
    truth, pred = _grid_instances()
    assert len(np.unique(truth)) == 501
    score = benchmark(M.dsb_average_precision, truth, pred)
    # t <= 0.90: TP 450, FP 30, FN 50; t = 0.95: the 100 shifted objects fail as well.
    expected = (9 * 450 / 530 + 350 / 630) / 10
    assert score == pytest.approx(expected, abs=1e-12)
