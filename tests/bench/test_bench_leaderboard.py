"""How the cost of a leaderboard grows with its number of entries.

A board of 8 and one of 64 entries on two real task definitions (``messidor2-referable``:
AUC, DeLong tests and resampled AUC rank intervals on its 437 test cases; ``jsrt-anatomy``:
per-case Dice, paired bootstrap tests on its 123 test cases), entries of graded quality so that
the tie rule runs many rounds. Timed: everything ``medbench leaderboard`` does per task after
reading the records: the summary check, the paired tests and tie rule, the rank intervals and
the figures. ``extra_info`` holds the seconds; with ``--benchmark-enable`` the cost per entry at
64 must stay within 2x of that at 8 (no worse than linear), and a 64-entry board is printed
with its seconds (the issue's target: under 5 s on this 2-core VM).

Every run (also with benchmarks disabled, as in CI) checks that the large board ranks entries
that differ on every case apart, which a fixed 2000-resample bootstrap under Holm could not.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import pytest

from medbench import metrics as M
from medbench.leaderboard.board import build_board
from medbench.leaderboard.entries import Entry, TaskRecords
from medbench.leaderboard.figures import figures_for
from medbench.tasks import get_task
from medbench.tasks.splits import load_split

SIZES = (8, 64)
MAX_PER_ENTRY_GROWTH = 2.0


def _record(spec, name, per_case, metrics):
    return {
        "status": "ok",
        "seed": 0,
        "submission": {"name": name, "path": f"submissions/{name}"},
        "task": {"name": spec.name, "n_test": len(per_case["case_id"])},
        "metrics": metrics,
        "per_class": {},
        "operating_points": {},
        "per_case": per_case,
    }


def _entries(task: str, n_entries: int) -> TaskRecords:
    spec = get_task(task)
    split = load_split(spec)
    ids = split.loc[split["split"] == "test", "case_id"].tolist()
    rng = np.random.default_rng(n_entries)
    entries = []
    if spec.kind == "binary":
        y = (np.arange(len(ids)) % 5 == 0).astype(np.int64)
        noise = rng.normal(0, 1, len(ids))
        for k in range(n_entries):
            s = 1 / (1 + np.exp(-(3.0 - 0.04 * k) * y - noise - rng.normal(0, 0.3, len(ids))))
            per_case = {"case_id": ids, "y_true": y.tolist(), "y_score": s.tolist()}
            metrics = {"auc": {"value": M.roc_auc(y, s)}}
            entries.append(_record(spec, f"entry-{k:02d}", per_case, metrics))
    else:
        base = rng.uniform(0.6, 0.95, len(ids))
        for k in range(n_entries):
            dice = np.clip(base - 0.004 * k + rng.normal(0, 0.002, len(ids)), 0, 1)
            per_case = {"case_id": ids, "dice": dice.tolist()}
            entries.append(
                _record(spec, f"entry-{k:02d}", per_case, {"dice": {"value": float(dice.mean())}})
            )
    return TaskRecords(
        spec,
        tuple(
            Entry(r["submission"]["name"], (r,), (Path(f"{i}.json"),))
            for i, r in enumerate(entries)
        ),
        (),
        (),
    )


def _publish_board(records: TaskRecords):
    board = build_board(records)
    figures = figures_for(board)
    return board, figures


@pytest.mark.parametrize("task", ["messidor2-referable", "jsrt-anatomy"])
def test_leaderboard_cost_is_linear_in_entries(benchmark, task):
    boards = {n: _entries(task, n) for n in SIZES}
    seconds = {n: [] for n in SIZES}
    results = {}

    def one_round():
        for n in SIZES:
            started = time.perf_counter()
            results[n] = _publish_board(boards[n])
            seconds[n].append(time.perf_counter() - started)

    warmup = 1 if benchmark.enabled else 0
    benchmark.pedantic(one_round, rounds=3 if benchmark.enabled else 1, warmup_rounds=warmup)
    median = {n: statistics.median(seconds[n][warmup:]) for n in SIZES}
    growth = (median[64] / 64) / (median[8] / 8)
    benchmark.extra_info.update(
        seconds={str(n): round(median[n], 3) for n in SIZES},
        per_entry_growth_64_vs_8=round(growth, 3),
    )
    print(
        f"{task}: 8 entries {median[8]:.2f} s, 64 entries {median[64]:.2f} s; per entry x{growth:.2f}"
    )

    board, figures = results[64]
    # entries 0..63 get worse by a step the paired tests resolve: distinct ranks, in order
    ranks = [row.rank for row in board.rows]
    assert len(set(ranks)) > 8, (
        f"a 64-entry board of graded entries tied into {len(set(ranks))} ranks"
    )
    assert ranks == sorted(ranks)
    assert set(figures) >= {"ranks"}
    if benchmark.enabled:
        assert growth <= MAX_PER_ENTRY_GROWTH, (
            f"{task}: the leaderboard's cost per entry grows {growth:.2f}x from 8 to 64 entries"
        )
