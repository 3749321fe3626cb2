"""``scoring.validation_score``: the trainer's "best epoch" value is the test scorer's primary
metric, computed without intervals and without the metrics validation does not need (HD95)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medbench import metrics as M
from medbench import scoring
from medbench.tasks import get_task


def _masks(rng: np.random.Generator, n: int, classes: int, side: int) -> np.ndarray:
    yy, xx = np.mgrid[:side, :side]
    out = np.zeros((n, classes, side, side), bool)
    for i in range(n):
        for c in range(classes):
            cy, cx, r = rng.integers(side // 4, 3 * side // 4, 2).tolist() + [side // 6]
            out[i, c] = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
    return out


@pytest.mark.parametrize("task", ["jsrt-anatomy", "isbi2012-membranes", "toy-anatomy"])
def test_validation_score_is_the_primary_metric_of_the_full_score(task):
    spec = get_task(task)
    rng = np.random.default_rng(1)
    truth = _masks(rng, 6, len(spec.classes), 64)
    pred = np.roll(truth, rng.integers(1, 6), axis=-1)
    pred[0] = False  # an empty prediction: Dice 0 there
    cases = pd.DataFrame({"case_id": [f"c{i}" for i in range(6)]})
    full = scoring.score(spec, pred, truth, cases, n_resamples=0)
    value = scoring.validation_score(task, truth, pred.astype(np.float32))
    assert value == pytest.approx(full.summary[spec.primary_metric].value, abs=1e-12)


def test_validation_does_not_compute_hd95(monkeypatch):
    spec = get_task("jsrt-anatomy")
    assert "hd95" in spec.metric_names  # else this test proves nothing
    calls = []
    monkeypatch.setattr(M, "hd95", lambda *a, **k: calls.append(1))
    truth = _masks(np.random.default_rng(2), 3, len(spec.classes), 32)
    scoring.validation_score("jsrt-anatomy", truth, truth.astype(np.float32))
    assert calls == []
