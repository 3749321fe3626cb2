"""The transfer-learning table of a binary task (Lakhani & Sundaram 2017, Table 2's layout).

Rows: the network (``[train] backbone``); columns: untrained / ImageNet-pretrained, each with
the base and the Lakhani augmentation (``[train] aug``); cells: test AUC [95 % DeLong CI] of
that entry's representative run. Plus the ensemble of the pretrained runs: their per-case
scores averaged, the AUC of the average (McKinney et al. and Lakhani & Sundaram ensemble the
same way). Everything comes from the records on the board: entries whose ``[train]`` names a
backbone, whether it was pretrained and its augmentation (the ``cnn`` entry and its variants).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from medbench import metrics as M
from medbench.leaderboard.board import Board

COLUMNS = (
    ("untrained", "base"),
    ("untrained", "lakhani"),
    ("pretrained", "base"),
    ("pretrained", "lakhani"),
)
ANCHOR = {
    "source": "Lakhani & Sundaram 2017 (TB; their test set, not this task)",
    "cells": {("untrained", "base"): 0.90, ("pretrained", "base"): 0.98},
    "ensemble": 0.99,
}


@dataclass(frozen=True)
class Cell:
    entry: str
    value: float
    ci_low: float | None
    ci_high: float | None


def _setting(record: dict[str, Any]) -> tuple[str, str, str] | None:
    train = record.get("train") or {}
    if "backbone" not in train or "pretrained" not in train or "aug" not in train:
        return None
    if train.get("tta", "none") != "none" or train.get("heads", "softmax") != "softmax":
        return None  # a variant that predicts otherwise (shown in its own section), not a cell
    pretrained = "pretrained" if train["pretrained"] else "untrained"
    return str(train["backbone"]), pretrained, str(train["aug"])


def transfer_table(board: Board) -> dict[str, Any] | None:
    """The table as data (None unless a binary task has two such cells or more)."""
    if board.spec.kind != "binary":
        return None
    cells: dict[str, dict[tuple[str, str], Cell]] = {}
    tables: dict[str, dict[str, np.ndarray]] = {}
    for entry, table in zip(board.ranked, board.tables, strict=True):
        setting = _setting(entry.record)
        if setting is None or setting[2] not in ("base", "lakhani"):
            continue
        auc = entry.metric("auc")
        cells.setdefault(setting[0], {})[setting[1:]] = Cell(
            entry.name, auc.get("value"), auc.get("ci_low"), auc.get("ci_high")
        )
        tables[entry.name] = table
    if sum(len(row) for row in cells.values()) < 2:
        return None
    pretrained = [c.entry for row in cells.values() for k, c in row.items() if k[0] == "pretrained"]
    return {
        "rows": {
            arch: {f"{p} · {a}": row.get((p, a)) for p, a in COLUMNS}
            for arch, row in sorted(cells.items())
        },
        "ensemble": _ensemble_record(board, pretrained) or _ensemble(pretrained, tables),
        "anchor": ANCHOR,
    }


def _ensemble_record(board: Board, entries: list[str]) -> Cell | None:
    """An ensemble entry of exactly these members with equal weights (``medbench ensemble``)."""
    for entry in board.ranked:
        info = entry.record.get("ensemble")
        if info is None or len(entries) < 2:
            continue
        members = info.get("members") or []
        if sorted(str(m.get("entry")) for m in members) == sorted(entries) and (
            len({float(m.get("weight", 1.0)) for m in members}) == 1
        ):
            auc = entry.metric("auc")
            return Cell(entry.name, auc.get("value"), auc.get("ci_low"), auc.get("ci_high"))
    return None


def _ensemble(entries: list[str], tables: dict[str, dict[str, np.ndarray]]) -> Cell | None:
    """The mean of the entries' per-case scores (the cases common to the board) and its AUC."""
    if len(entries) < 2:
        return None
    y = tables[entries[0]]["y_true"]
    scores = np.mean([tables[e]["y_score"] for e in entries], axis=0)
    value = M.roc_auc(y, scores)
    low, high = M.delong_ci(y, scores) if not math.isnan(value) else (None, None)
    return Cell(" + ".join(entries), value, low, high)
