"""The architecture x loss table of a segmentation task (Novikov et al. 2018, their results'
layout).

Rows: every trained entry on the board (its record has ``[train]`` epochs; not ensembles or
derived records), named by its submission folder and ``[train] variant`` (the architecture) and
``[train] loss`` (the standard trainer's default, ``"bce+dice"``, when unset). Columns: Dice and
Jaccard (IoU) per structure [95 % bootstrap CI] and their means for a task with several
classes; the task's metrics [CI] for a one-class task (ISBI: pixel error, V_rand, V_info, ...).
Every value is the entry's representative run (its first seed) as recorded; the rank is the
board's (paired tests against the leader on the primary metric, Holm; ``=`` marks a tie), and
the settings column says what each row was trained with, since rows trained at different
widths, epochs or devices differ for that reason too. The task's published anchors with
per-structure values are rows of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medbench.leaderboard.board import Board
from medbench.submission.choices import DEFAULT_LOSS, DEFAULT_TILE_OVERLAP

KINDS = ("multilabel-segmentation",)
PER_CLASS = ("dice", "iou")


@dataclass(frozen=True)
class Value:
    value: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class ArchitectureRow:
    entry: str
    architecture: str
    loss: str
    settings: str
    rank_label: str
    cells: dict[str, Value]  # column key -> value


def columns(board: Board) -> list[tuple[str, str, str | None]]:
    """``(key, title, class or None)`` per column: per-structure Dice and IoU, then their means
    (several classes), or the task's metrics (one class)."""
    spec = board.spec
    if len(spec.classes) > 1:
        out = [(f"{m}:{c}", f"{m} {c}", c) for c in spec.classes for m in PER_CLASS]
        return out + [(m, f"{m} (mean)", None) for m in PER_CLASS]
    return [(m.name, m.name, None) for m in spec.all_metrics()]


def _value(block: dict[str, Any]) -> Value:
    return Value(block.get("value"), block.get("ci_low"), block.get("ci_high"))


def settings_text(record: dict[str, Any]) -> str:
    train = record.get("train") or {}
    parts = [f"width {train['base_width']}"] if "base_width" in train else []
    parts.append(f"{train['epochs']} epochs")
    if train.get("image_size"):
        parts.append(f"{train['image_size']} px crops")
    if train.get("tile"):
        parts.append(f"tiles {train['tile']}/{train.get('tile_overlap', DEFAULT_TILE_OVERLAP)}")
    if train.get("pretrained"):
        parts.append("ImageNet encoder")
    return ", ".join(parts + [str(record.get("device") or "–")])


def architecture_rows(board: Board) -> list[ArchitectureRow]:
    """The table's entry rows in the board's order; [] for other task kinds."""
    if board.spec.kind not in KINDS:
        return []
    cols = columns(board)
    rows = []
    for row in board.rows:
        record = row.entry.record
        train = record.get("train") or {}
        if "epochs" not in train or record.get("ensemble") or record.get("derived"):
            continue
        folder = record["submission"].get("folder_name") or record["submission"]["name"]
        variant = train.get("variant")
        cells = {
            key: _value(row.entry.class_metric(cls, key.split(":")[0]))
            if cls
            else _value(row.entry.metric(key))
            for key, _, cls in cols
        }
        rows.append(
            ArchitectureRow(
                entry=row.entry.name,
                architecture=f"{folder} · {variant}" if variant else str(folder),
                loss=str(train.get("loss", DEFAULT_LOSS)),
                settings=settings_text(record),
                rank_label=row.rank_label,
                cells=cells,
            )
        )
    return rows


def anchor_rows(board: Board) -> list[tuple[str, dict[str, float]]]:
    """``(source, {column key: value})`` for each published anchor with per-structure values
    of Dice or IoU (or, one class, a value of one of the task's metrics)."""
    keys = {key for key, _, _ in columns(board)}
    out = []
    for ref in board.spec.references:
        if len(board.spec.classes) > 1:
            cells = {
                f"{ref.metric}:{c}": v for c, v in ref.per_class if f"{ref.metric}:{c}" in keys
            }
        else:
            cells = {ref.metric: ref.value} if ref.metric in keys else {}
        if cells:
            out.append((ref.source, cells))
    return out


def architecture_table(board: Board) -> dict[str, Any] | None:
    """The table as data; None unless two trained entries or more are on the board."""
    rows = architecture_rows(board)
    if len(rows) < 2:
        return None
    return {"columns": columns(board), "rows": rows, "anchors": anchor_rows(board)}
