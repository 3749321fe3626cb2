"""The leaderboard's compute cost: the Pareto front, the section, the figure, the exports, and
what the worst-cases gallery says of its split (medbench.leaderboard.cost)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math

import numpy as np
import pytest

from medbench.leaderboard import build_boards
from medbench.leaderboard.cost import cost_axis, cost_section, figure_cost, pareto_front, si
from medbench.leaderboard.export import board_data, render_csv
from medbench.leaderboard.figures import figures_for, gallery_caption, gallery_title
from medbench.results import record_path, write_record
from medbench.scoring import report_fields, score
from medbench.tasks import get_task
from medbench.tasks.splits import load_split

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# --- the Pareto front ----------------------------------------------------------------------------


def test_pareto_front_of_constructed_entries():
    # cost:    1    2    3    4    None
    # value: 0.5  0.7  0.6  0.9  0.99  (higher is better)
    front = pareto_front([1, 2, 3, 4, None], [0.5, 0.7, 0.6, 0.9, 0.99], higher_is_better=True)
    # 3 is dominated by 2 (cheaper and better); the entry without a cost is never on it
    assert front == [True, True, False, True, False]


def test_pareto_front_ties_and_direction():
    # the same cost and value: neither dominates the other; same cost, worse value: dominated
    assert pareto_front([1, 1, 1], [0.8, 0.8, 0.7], higher_is_better=True) == [True, True, False]
    # the same value at a higher cost is dominated
    assert pareto_front([1, 2], [0.8, 0.8], higher_is_better=True) == [True, False]
    # lower is better (an error): the cheap entry with the lower error dominates
    assert pareto_front([1, 2, 3], [0.2, 0.3, 0.1], higher_is_better=False) == [True, False, True]
    # an undefined value is not on it, and does not hide anyone
    assert pareto_front([1, 2], [math.nan, 0.5], higher_is_better=True) == [False, True]
    # a zero cost (a fit that took no time) is a cost like any other
    assert pareto_front([0.0, 5.0], [0.5, 0.9], higher_is_better=True) == [True, True]


def test_si_formats():
    assert si(1_942_323) == "1.94 M"
    assert si(4_000_000) == "4 M"
    assert si(376_963_072, "FLOPs") == "0.377 GFLOPs"
    assert si(5_632, "FLOPs") == "5.63 kFLOPs"
    assert si(554) == "554"
    assert si(None) == "–"


# --- a board with costs --------------------------------------------------------------------------

SPEC = get_task("toy-lesions")
# name: (signal strength, params, FLOPs per image, fit seconds, device)
ENTRIES = {
    "big": (4.0, 4_000_000, 390_000_000, 600.0, "NVIDIA H200"),
    "small": (1.6, 50_000, 5_000_000, 60.0, "cpu"),
    "bloated": (0.8, 9_000_000, 2_000_000_000, 900.0, "cpu"),
}


def _record(name, strength, cost, fit_s, device, rng):
    frame = load_split(SPEC)
    test = frame[frame["split"] == "test"][["case_id"]].reset_index(drop=True)
    y = np.arange(len(test)) % 2
    p = 1 / (1 + np.exp(-(strength * (y - 0.5) + rng.normal(0, 1, y.size))))
    fields = report_fields(score(SPEC, p, y, test, n_resamples=200))
    record = {
        "schema": "medbench.result/2",
        "status": "ok",
        "error": None,
        "task": {
            "name": SPEC.name,
            "version": SPEC.version,
            "kind": SPEC.kind,
            "split_sha256": SPEC.split_sha256,
            "data_sha256": "d" * 64,
            "n_test": len(test),
        },
        "submission": {
            "name": name,
            "path": f"submissions/{name}",
            "content_sha256": hashlib.sha256(name.encode()).hexdigest(),
        },
        "seed": 0,
        "device": "cuda" if device.startswith("NVIDIA") else "cpu",
        "device_name": device,
        "isolation": {"mode": "sandbox"},
        "primary_metric": SPEC.primary_metric,
        "higher_is_better": True,
        "train": {},
        "environment": {"medbench": "0.1.0"},
        "timings": {"fit_s": fit_s, "predict_s": 1.24, "child_wall_s": fit_s + 10.0},
        "created": "2026-01-01T00:00:00Z",
        **fields,
    }
    if cost is not None:
        params, flops = cost
        record["cost"] = {
            "params": params,
            "trainable_params": params,
            "flops_per_image": flops,
            "flops_input": [64, 64],
            "flops_input_note": "the task's input size",
            "fit_s": fit_s,
            "predict_s": 1.24,
            "predict_s_per_case": 0.01,
            "device": device,
            "device_hours": round((fit_s + 10.0) / 3600, 6),
            "peak_memory_mb": 700.0,
            "peak_gpu_memory_mb": 1843.0 if device.startswith("NVIDIA") else None,
        }
    return record


def _board(tmp_path, *, with_old: bool):
    rng = np.random.default_rng(3)
    for name, (strength, params, flops, fit_s, device) in ENTRIES.items():
        rec = _record(name, strength, (params, flops), fit_s, device, rng)
        write_record(record_path(tmp_path, SPEC.name, name, 0), rec)
    if with_old:  # a record from before medbench recorded cost: times, no counts
        rec = _record("old", 0.1, None, 5.0, "cpu", rng)
        write_record(record_path(tmp_path, SPEC.name, "old", 0), rec)
    (board,) = build_boards(tmp_path)
    return board


@pytest.fixture
def board(tmp_path):
    board = _board(tmp_path, with_old=False)
    values = {e.name: e.value("auc") for e in board.ranked}
    assert values["big"] > values["small"] > values["bloated"]  # what the tests below rely on
    return board


def test_the_front_is_by_flops_when_every_entry_reports_them(board):
    assert cost_axis(board) == "flops_per_image"
    data = board_data(board)
    # bloated: worse than small at more FLOPs; big: better at more; small: cheapest
    assert set(data["cost"]["pareto_front"]) == {"big", "small"}
    big = next(e for e in data["entries"] if e["submission"] == "big")
    assert big["cost"]["params"] == 4_000_000 and big["cost"]["flops_per_image"] == 390_000_000
    assert big["cost"]["flops_input"] == [64, 64] and big["cost"]["device"] == "NVIDIA H200"
    json.dumps(data, allow_nan=False)  # the JSON export holds them as plain numbers


def test_the_section_shows_counts_times_and_the_front(board):
    text = "\n".join(cost_section(board))
    assert "**Reported by the run**" in text and "**Depend on the machine**" in text
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines()}
    assert "| big | 4 M | 0.39 GFLOPs (64×64) | 10.0 min | 10 ms | NVIDIA H200 |" in rows["big"]
    assert "700 MiB / 1843 MiB | ✓ |" in rows["big"]
    assert rows["small"].endswith("| ✓ |") and rows["bloated"].endswith("|  |")
    assert "| small | 50 k | 5 MFLOPs (64×64) | 60.0 s |" in rows["small"]


def test_csv_carries_the_cost_columns(board):
    rows = {r["submission"]: r for r in csv.DictReader(io.StringIO(render_csv(board)))}
    assert rows["small"]["params"] == "50000" and rows["small"]["flops_per_image"] == "5000000"
    assert rows["big"]["on_pareto_front"] == "true"
    assert rows["bloated"]["on_pareto_front"] == "false"
    assert float(rows["big"]["device_hours"]) == pytest.approx(610 / 3600, abs=1e-6)


def test_the_cost_figure_is_a_png(board):
    png = figures_for(board)["cost"]
    assert png.startswith(PNG_SIGNATURE) and len(png) > 5000
    assert png == figure_cost(board)  # deterministic: the same records, the same bytes


def test_old_records_show_dashes_and_move_the_front_to_training_time(tmp_path):
    board = _board(tmp_path, with_old=True)
    assert cost_axis(board) == "train_device_hours"  # "old" reports no FLOPs
    text = "\n".join(cost_section(board))
    old = next(line for line in text.splitlines() if line.startswith("| old |"))
    assert old.startswith("| old | – | – | 5.0 s | 10 ms | cpu | 0.00417 | – |")
    data = board_data(board)
    olds = next(e for e in data["entries"] if e["submission"] == "old")
    assert olds["cost"]["params"] is None and olds["cost"]["fit_s"] == 5.0
    # by fit time: old is the cheapest (5 s) and bloated is beaten by small at less time
    assert "old" in data["cost"]["pareto_front"] and "bloated" not in data["cost"]["pareto_front"]
    assert figures_for(board)["cost"].startswith(PNG_SIGNATURE)


def test_the_gallery_title_and_caption_say_the_split(board):
    leader = board.ranked[0].record
    assert "test labels shown" in gallery_title(board)  # no split recorded: the test split
    assert "shows test labels" in gallery_caption(board)
    leader["gallery"] = {"split": "val", "file": "x.worst.png", "sha256": "0" * 64, "cases": []}
    assert gallery_title(board) == "The leader's worst validation cases (no test labels shown)"
    assert "no test image or label is shown" in gallery_caption(board)
