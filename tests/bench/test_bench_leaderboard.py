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

The same boards with three seeds per entry (each seed its own small noise) time the two-level
bootstrap: every seed's statistic on the shared resamples, pooled per entry; on the AUC board
the paired tests become bootstraps (DeLong is for single-seed pairs). Their cost per run must
stay within the same bound (``MAX_PER_RUN_GROWTH``); the seconds are printed.
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
# Three-seed boards: every bootstrap's resamples grow with the Holm family
# (stats.paired_resamples: 2000 at 8 entries, 5040 at 64), and on the AUC board every pair is a
# bootstrap, so the cost per run grows by up to that factor (2.5) besides the linear part.
MAX_PER_RUN_GROWTH = 3.0


def _record(spec, name, per_case, metrics, seed=0):
    return {
        "status": "ok",
        "seed": seed,
        "submission": {"name": name, "path": f"submissions/{name}"},
        "task": {"name": spec.name, "n_test": len(per_case["case_id"])},
        "metrics": metrics,
        "per_class": {},
        "operating_points": {},
        "per_case": per_case,
    }


def _entries(task: str, n_entries: int, n_seeds: int = 1) -> TaskRecords:
    spec = get_task(task)
    split = load_split(spec)
    ids = split.loc[split["split"] == "test", "case_id"].tolist()
    rng = np.random.default_rng(n_entries)
    entries = []
    if spec.kind == "binary":
        y = (np.arange(len(ids)) % 5 == 0).astype(np.int64)
        noise = rng.normal(0, 1, len(ids))
        for k in range(n_entries):
            own = noise + rng.normal(0, 0.3, len(ids))
            runs = []
            for seed in range(n_seeds):  # seed 0 is the single-seed board's run
                z = own + (rng.normal(0, 0.05, len(ids)) if seed else 0)
                s = 1 / (1 + np.exp(-(3.0 - 0.04 * k) * y - z))
                per_case = {"case_id": ids, "y_true": y.tolist(), "y_score": s.tolist()}
                metrics = {"auc": {"value": M.roc_auc(y, s)}}
                runs.append(_record(spec, f"entry-{k:02d}", per_case, metrics, seed))
            entries.append(runs)
    else:
        base = rng.uniform(0.6, 0.95, len(ids))
        for k in range(n_entries):
            own = base - 0.004 * k + rng.normal(0, 0.002, len(ids))
            runs = []
            for seed in range(n_seeds):
                dice = np.clip(own + (rng.normal(0, 0.001, len(ids)) if seed else 0), 0, 1)
                per_case = {"case_id": ids, "dice": dice.tolist()}
                metrics = {"dice": {"value": float(dice.mean())}}
                runs.append(_record(spec, f"entry-{k:02d}", per_case, metrics, seed))
            entries.append(runs)
    return TaskRecords(
        spec,
        tuple(
            Entry(
                runs[0]["submission"]["name"],
                tuple(runs),
                tuple(Path(f"{i}.seed{r['seed']}.json") for r in runs),
            )
            for i, runs in enumerate(entries)
        ),
        (),
        (),
    )


def _publish_board(records: TaskRecords):
    board = build_board(records)
    figures = figures_for(board)
    return board, figures


@pytest.mark.parametrize("n_seeds", [1, 3])
@pytest.mark.parametrize("task", ["messidor2-referable", "jsrt-anatomy"])
def test_leaderboard_cost_is_linear_in_entries(benchmark, task, n_seeds):
    boards = {n: _entries(task, n, n_seeds) for n in SIZES}
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
        f"{task}, {n_seeds} seed(s) per entry: 8 entries {median[8]:.2f} s, 64 entries "
        f"{median[64]:.2f} s; per entry x{growth:.2f}"
    )

    board, figures = results[64]
    # entries 0..63 get worse by a step the paired tests resolve: distinct ranks, in order
    ranks = [row.rank for row in board.rows]
    assert len(set(ranks)) > 8, (
        f"a 64-entry board of graded entries tied into {len(set(ranks))} ranks"
    )
    assert ranks == sorted(ranks)
    assert set(figures) >= ({"ranks", "seeds"} if n_seeds > 1 else {"ranks"})
    assert all(len(r.entry.seeds) == n_seeds for r in board.rows)
    if benchmark.enabled:
        bound = MAX_PER_ENTRY_GROWTH if n_seeds == 1 else MAX_PER_RUN_GROWTH
        assert growth <= bound, (
            f"{task}: the leaderboard's cost per entry grows {growth:.2f}x from 8 to 64 entries "
            f"({n_seeds} seed(s) each)"
        )
