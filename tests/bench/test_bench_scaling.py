"""How the cost of scoring and of preparing grows with the number of cases.

Every scorer of :mod:`medbench.scoring` (one task per code path: binary with operating points,
multi-class with bootstrapped kappa and AUC, multi-label masks with hd95, membranes with the Rand
scores, instances with DSB AP and with SEG) scores synthetic predictions of n, 2n and 4n cases;
``prepare`` makes the toy tasks with n, 2n and 4n cases (their generator's counts and split
patched). ``extra_info`` holds the seconds per case at each size. With ``--benchmark-enable``
the cost must be roughly linear: the per-case time at 4n within 2x of that at n. Fixed costs
(bootstrap set-up, thread pools, file writes) make the per-case time fall with n; only a cost
that grows faster than the number of cases fails.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, roc_auc_score

from medbench import scoring
from medbench.data import prepare as prepare_module
from medbench.data.datasets import toy
from medbench.data.prepare import prepare
from medbench.tasks import get_task

MULTIPLES = (1, 2, 4)
MAX_PER_CASE_GROWTH = 2.0


def _cases(n: int) -> pd.DataFrame:
    return pd.DataFrame({"case_id": [f"case-{i:05d}" for i in range(n)]})


def _time_sizes(benchmark, sizes: list[int], run: Callable[[int], object]) -> dict[int, list]:
    """Run every size once per round (interleaved); return the seconds and result per size."""
    seconds: dict[int, list[float]] = {n: [] for n in sizes}
    results: dict[int, object] = {}

    def one_round() -> None:
        for n in sizes:
            started = time.perf_counter()
            results[n] = run(n)
            seconds[n].append(time.perf_counter() - started)

    warmup = 1 if benchmark.enabled else 0
    benchmark.pedantic(one_round, rounds=3 if benchmark.enabled else 1, warmup_rounds=warmup)
    return {n: [seconds[n][warmup:], results[n]] for n in sizes}


def _record_scaling(benchmark, label: str, timed: dict[int, list]) -> None:
    """Per-case milliseconds at each size into extra_info; assert near-linear when enabled."""
    per_case = {n: statistics.median(s) / n for n, (s, _) in timed.items()}
    sizes = sorted(per_case)
    growth = per_case[sizes[-1]] / per_case[sizes[0]]
    benchmark.extra_info.update(
        sizes=sizes,
        ms_per_case=[round(1e3 * per_case[n], 4) for n in sizes],
        seconds=[round(statistics.median(timed[n][0]), 4) for n in sizes],
        per_case_growth_4n_vs_n=round(growth, 3),
    )
    print(
        f"{label}: "
        + ", ".join(f"n={n} {1e3 * per_case[n]:.3f} ms/case" for n in sizes)
        + f"; per-case cost at {sizes[-1]} / at {sizes[0]} = {growth:.2f}"
    )
    if benchmark.enabled:
        assert growth <= MAX_PER_CASE_GROWTH, (
            f"{label}: the cost per case grows {growth:.2f}x from {sizes[0]} to {sizes[-1]} "
            f"cases; expected at most {MAX_PER_CASE_GROWTH}x (roughly linear)"
        )


# --- synthetic predictions with answers computed independently -----------------------------------


def _binary(n: int, rng: np.random.Generator) -> dict:
    y = (np.arange(n) % 4 == 0).astype(np.int64)
    s = np.clip(0.35 + 0.3 * y + rng.normal(0, 0.2, n), 0, 1)
    y_val = (np.arange(200) % 4 == 0).astype(np.int64)
    s_val = np.clip(0.35 + 0.3 * y_val + rng.normal(0, 0.2, 200), 0, 1)

    def check(report) -> None:
        assert report.value("auc") == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert report.value("brier") == pytest.approx(np.mean((s - y) ** 2), abs=1e-12)

    return {"predictions": s, "truth": y, "val": (y_val, s_val), "check": check}


def _multiclass(n: int, rng: np.random.Generator) -> dict:
    y = rng.integers(0, 5, n)
    p = rng.dirichlet(np.ones(5), n)
    p[np.arange(n), y] += 0.4
    p /= p.sum(axis=1, keepdims=True)
    pred = p.argmax(axis=1)

    def check(report) -> None:
        assert report.value("accuracy") == pytest.approx(np.mean(pred == y), abs=1e-12)
        kappa = cohen_kappa_score(y, pred, weights="quadratic")
        assert report.value("qwk") == pytest.approx(kappa, abs=1e-12)

    return {"predictions": p, "truth": y, "check": check}


def _masks(n: int, rng: np.random.Generator) -> dict:
    spec = get_task("jsrt-anatomy")
    shape = (n, len(spec.classes), *spec.input.size)
    truth = np.frombuffer(rng.bytes(int(np.prod(shape))), np.uint8).reshape(shape) < 77
    pred = truth.copy()
    pred[:, :, ::7] ^= True  # every 7th row wrong

    def check(report) -> None:
        inter = (truth & pred).sum(axis=(2, 3))
        dice = 2 * inter / (truth.sum(axis=(2, 3)) + pred.sum(axis=(2, 3)))
        assert report.value("dice") == pytest.approx(dice.mean(axis=1).mean(), abs=1e-12)
        assert report.summary["hd95"].n_undefined == 0

    return {"predictions": pred, "truth": truth, "check": check}


def _membranes(n: int, rng: np.random.Generator) -> dict:
    truth = np.zeros((n, 1, 512, 512), bool)
    truth[:, :, ::16] = True  # membranes: a grid of 32 x 32 cells of 15 x 15 pixels
    truth[:, :, :, ::16] = True
    pred = truth.copy()
    pred[:, :, :, 16::32] = False  # every other vertical membrane missed: cells merge in pairs
    pred[:, :, 8::64, 8::64] = True  # and some false membrane dots

    def check(report) -> None:
        assert report.value("pixel_error") == pytest.approx(np.mean(truth != pred), abs=1e-12)
        assert 0 < report.value("v_rand") < 1 and 0 < report.value("v_info") < 1

    return {"predictions": pred, "truth": truth, "check": check}


def _label_map() -> np.ndarray:
    """100 square 15 x 15 objects on a 10 x 10 grid in a 256 x 256 image."""
    labels = np.zeros((256, 256), np.uint16)
    for k in range(100):
        y, x = 10 + 24 * (k // 10), 10 + 24 * (k % 10)
        labels[y : y + 15, x : x + 15] = k + 1
    return labels


def _instances(n: int, rng: np.random.Generator) -> dict:
    truth = [_label_map() for _ in range(n)]
    # Every object shifted one pixel right: IoU 210 / 240 = 0.875, so matched at the DSB
    # thresholds 0.50 ... 0.85 (8 of 10): AP 0.8; F1 at 0.5 is 1; SEG (mean matched IoU) 0.875.
    pred = [np.roll(t, 1, axis=1) for t in truth]

    def check(report) -> None:
        assert report.value("dsb_ap") == pytest.approx(0.8, abs=1e-12)
        assert report.value("foreground_dice") == pytest.approx(210 / 225, abs=1e-12)
        if "f1_50" in report.summary:
            assert report.value("f1_50") == pytest.approx(1.0, abs=1e-12)
        if "seg" in report.summary:
            assert report.value("seg") == pytest.approx(0.875, abs=1e-12)

    return {"predictions": pred, "truth": truth, "check": check}


SCORERS = [
    pytest.param("messidor2-referable", _binary, 250, id="binary-messidor2-referable"),
    pytest.param("messidor2-grading", _multiclass, 125, id="multiclass-messidor2-grading"),
    pytest.param("jsrt-anatomy", _masks, 4, id="masks-jsrt-anatomy"),
    pytest.param("isbi2012-membranes", _membranes, 2, id="membranes-isbi2012-membranes"),
    pytest.param("dsb2018-nuclei", _instances, 8, id="instances-dsb2018-nuclei"),
    pytest.param("ctc-u373", _instances, 8, id="instances-ctc-u373"),
]


@pytest.mark.parametrize(("name", "make", "n"), SCORERS)
def test_bench_score_scaling(benchmark, name, make, n):
    """``scoring.score`` at n, 2n and 4n cases (including its bootstrap intervals)."""
    spec = get_task(name)
    rng = np.random.default_rng(0)
    sizes = [n * m for m in MULTIPLES]
    inputs = {k: make(k, rng) for k in sizes}

    def run(k: int):
        case = inputs[k]
        return scoring.score(
            spec, case["predictions"], case["truth"], _cases(k), val=case.get("val")
        )

    timed = _time_sizes(benchmark, sizes, run)
    for k, (_, report) in timed.items():
        assert len(report.per_case) == k
        inputs[k]["check"](report)
    benchmark.extra_info.update(task=name, kind=spec.kind)
    _record_scaling(benchmark, f"score {name}", timed)


@pytest.mark.parametrize("name", ["toy-anatomy", "toy-lesions"])
def test_bench_prepare_scaling(benchmark, monkeypatch, tmp_path, name):
    """``prepare`` of a toy task with n, 2n and 4n generated cases (4n = the real count)."""
    spec = get_task(name)
    real = toy.COUNTS[name]
    n = real // 4
    sizes = [n * m for m in MULTIPLES]
    monkeypatch.setenv("MEDBENCH_HOME", str(tmp_path))

    def split_of(k: int) -> pd.DataFrame:
        # 60 / 15 / 25 in case order; any split does, the generator makes every case alike.
        ids = [f"{name}-{i:04d}" for i in range(k)]
        names = ["train"] * (k * 60 // 100) + ["val"] * (k * 15 // 100)
        names += ["test"] * (k - len(names))
        return pd.DataFrame({"case_id": ids, "split": names})

    def run(k: int):
        monkeypatch.setitem(toy.COUNTS, name, k)
        monkeypatch.setattr(prepare_module, "load_split", lambda spec: split_of(k))
        return prepare(spec, force=True).manifest["counts"]

    timed = _time_sizes(benchmark, sizes, run)
    for k, (_, counts) in timed.items():
        assert counts == split_of(k)["split"].value_counts().to_dict()
    assert sizes[-1] == real
    benchmark.extra_info.update(task=name)
    _record_scaling(benchmark, f"prepare {name}", timed)
