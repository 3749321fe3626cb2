"""The architecture x loss table of a segmentation board (Novikov et al. 2018's layout)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
from test_leaderboard import GPU, _anatomy_prediction, _anatomy_truth, _cases, _record

from medbench.leaderboard import build_boards
from medbench.leaderboard.architectures import architecture_table, columns
from medbench.leaderboard.export import board_data
from medbench.leaderboard.markdown import render_markdown
from medbench.results import write_record
from medbench.scoring import score
from medbench.tasks import get_task

ENTRIES = {  # entry -> (train table, shift of the predicted masks: larger is worse)
    "novikov": ({"epochs": 20, "base_width": 8, "variant": "unet"}, 1),
    "novikov+dice": ({"epochs": 20, "base_width": 8, "variant": "unet", "loss": "dice"}, 1),
    "novikov+inverted": ({"epochs": 20, "base_width": 2, "variant": "inverted"}, 2),
    "fcn": ({"epochs": 30, "base_width": 16, "tile": 64, "tile_overlap": 16}, 3),
    "dummy": ({}, 6),  # not trained: no row
}


def _records(tmp_path, task="jsrt-anatomy"):
    spec = get_task(task)
    rng = np.random.default_rng(3)
    test = _cases(spec, "test")
    truth = _anatomy_truth(rng, len(test))
    folder = tmp_path / "results" / spec.name
    for name, (train, shift) in ENTRIES.items():
        pred = _anatomy_prediction(truth, rng, shift)
        record = _record(
            spec, name, "x", "v1", 0, GPU, 10.0, "2026-12-01T00:00:00Z",
            report=score(spec, pred, truth, test, n_resamples=50),
        )  # fmt: skip
        record["submission"]["folder_name"] = name.split("+")[0]
        record["train"] = train
        write_record(folder / f"{name}.seed0.json", record)
    return tmp_path / "results"


def test_rows_are_the_trained_entries_by_architecture_and_loss(tmp_path):
    (board,) = build_boards(_records(tmp_path))
    table = architecture_table(board)
    rows = {r.entry: r for r in table["rows"]}
    assert set(rows) == {"novikov", "novikov+dice", "novikov+inverted", "fcn"}
    assert rows["novikov"].architecture == "novikov · unet"
    assert rows["novikov"].loss == "bce+dice"  # the trainer's default when unset
    assert rows["novikov+dice"].loss == "dice"
    assert rows["fcn"].architecture == "fcn"
    assert rows["fcn"].settings == "width 16, 30 epochs, tiles 64/16, cuda"
    # In the board's order, with the board's rank labels.
    assert [r.entry for r in table["rows"]] == [
        r.entry.name for r in board.rows if r.entry.name in rows
    ]
    by_name = {r.entry.name: r for r in board.rows}
    for name, r in rows.items():
        assert r.rank_label == by_name[name].rank_label
        rec = by_name[name].entry.record
        for cls in ("lungs", "heart", "clavicles"):
            for m in ("dice", "iou"):
                assert r.cells[f"{m}:{cls}"].value == rec["per_class"][cls][m]["value"]
                assert r.cells[f"{m}:{cls}"].ci_low == rec["per_class"][cls][m]["ci_low"]
        assert r.cells["dice"].value == rec["metrics"]["dice"]["value"]


def test_the_anchors_with_per_structure_values_are_rows(tmp_path):
    (board,) = build_boards(_records(tmp_path))
    anchors = dict(architecture_table(board)["anchors"])
    unet = anchors["Novikov et al. 2018 (U-Net)"]
    assert unet == {"dice:lungs": 0.971, "dice:heart": 0.938, "dice:clavicles": 0.880}
    inverted = anchors["Novikov et al. 2018 (InvertedNet, Dice loss)"]
    assert inverted == {"iou:lungs": 0.950, "iou:heart": 0.882, "iou:clavicles": 0.868}


def test_a_one_class_task_has_its_metrics_as_columns():
    spec = get_task("isbi2012-membranes")
    keys = [key for key, _, _ in columns(SimpleNamespace(spec=spec))]
    assert keys == [m.name for m in spec.all_metrics()]
    assert {"pixel_error", "v_rand", "v_info"} <= set(keys)


def test_the_page_and_the_json_show_the_table(tmp_path):
    (board,) = build_boards(_records(tmp_path))
    text = render_markdown(board, tmp_path, [])
    section = text.split("## Architectures and losses", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("| ")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    assert head[:5] == [
        "Rank",
        "Architecture",
        "Loss",
        "dice lungs [95 % CI]",
        "iou lungs [95 % CI]",
    ]
    body = {re.sub(r"\s+", " ", ln.split("|")[2].strip()): ln for ln in lines[2:]}
    assert (
        "novikov · inverted" in body
        and "`dice`" in body["novikov · unet"]
        or any("`dice`" in ln for ln in lines)
    )
    assert any(
        "*anchor (published; protocol differs): Novikov et al. 2018 (U-Net)*" in ln for ln in lines
    )
    data = board_data(board)["architectures"]
    assert [r["entry"] for r in data["rows"]] == [
        r.entry for r in architecture_table(board)["rows"]
    ]
    assert data["columns"][-2:] == ["dice", "iou"]


def test_a_classification_board_has_no_table(tmp_path):
    (board,) = build_boards(_records(tmp_path))
    assert architecture_table(SimpleNamespace(spec=get_task("toy-lesions"), rows=())) is None
    assert board_data(board)["architectures"] is not None
