"""Entries made from other runs, each against the run a reader compares it with.

An ensemble (``medbench ensemble``) against its best member (McKinney et al. 2020 report the
same): did combining beat the best single member, by a difference the paired test can tell from
noise? A fine-to-coarse score (``medbench coarse``) against the same submission trained on the
coarse labels (Esteva et al. 2017): did the finer labels help? A run with test-time
augmentation (``[train] tta``) against the same run without it: what did the extra prediction
time buy? All are ranked like any entry. Values, CIs and tests are the board's: an entry with
several seeds shows its mean over seeds and is tested at two levels (seeds, then cases).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from medbench.leaderboard.board import Board
from medbench.leaderboard.stats import paired_p_value


@dataclass(frozen=True)
class EnsembleRow:
    name: str
    combine: str
    members: tuple[tuple[str, float], ...]  # (entry, weight)
    value: float
    ci_low: float | None
    ci_high: float | None
    best: str | None  # the best member on this board (None: no member is ranked here)
    best_value: float | None
    delta: float | None  # ensemble minus best member
    p: float | None  # the board's paired test, ensemble vs best member
    fit_s: float | None  # summed over the members


def ensemble_rows(board: Board) -> list[EnsembleRow]:
    spec = board.spec
    sign = 1 if spec.primary.higher_is_better else -1
    index = {e.name: i for i, e in enumerate(board.ranked)}
    rows = []
    for i, entry in enumerate(board.ranked):
        if entry.ensemble_of is None:
            continue
        info = entry.record["ensemble"]
        ranked = [m for m in entry.ensemble_of if m in index]
        best = max(ranked, key=lambda m: sign * board.summary(index[m]).value, default=None)
        best_value = delta = p = None
        own = board.summary(i)
        if best is not None:
            best_value = board.summary(index[best]).value
            delta = own.value - best_value
            p = paired_p_value(board.statistic, board.runs[i], board.runs[index[best]])
            p = None if p is None or math.isnan(p) else p
        rows.append(
            EnsembleRow(
                entry.name,
                str(info.get("combine", "")),
                tuple((str(m.get("entry")), float(m.get("weight", 1.0))) for m in info["members"]),
                own.value,
                own.ci_low,
                own.ci_high,
                best,
                best_value,
                delta,
                p,
                (entry.record.get("timings") or {}).get("fit_s"),
            )
        )
    return rows


@dataclass(frozen=True)
class Value:
    value: float
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class CoarseRow:
    base: str  # the submission's entry on this task (trained on the coarse labels)
    fine_task: str
    classes: tuple[str, ...]  # the fine classes summed into the positive class
    fine: Value
    coarse: Value | None  # None: no run of the same entry on this task
    delta: float | None
    p: float | None


def _value(board: Board, i: int) -> Value:
    shown = board.summary(i)
    return Value(shown.value, shown.ci_low, shown.ci_high)


def coarse_rows(board: Board) -> list[CoarseRow]:
    index = {e.name: i for i, e in enumerate(board.ranked)}
    rows = []
    for i, entry in enumerate(board.ranked):
        if entry.derived_from is None:
            continue
        base = entry.name.rsplit("@", 1)[0]
        fine = _value(board, i)
        coarse = delta = p = None
        if base in index:
            coarse = _value(board, index[base])
            delta = fine.value - coarse.value
            p = paired_p_value(board.statistic, board.runs[i], board.runs[index[base]])
            p = None if math.isnan(p) else p
        names = tuple(entry.record["derived"].get("positive_class_names") or ())
        rows.append(CoarseRow(base, entry.derived_from, names, fine, coarse, delta, p))
    return rows


TTA_OFF = ("none", None)


@dataclass(frozen=True)
class TtaRow:
    plain: str  # the entry without test-time augmentation
    tta: str  # the same content and settings, with it
    mode: str
    without: Value
    with_tta: Value
    delta: float
    p: float | None
    predict_s: tuple[float | None, float | None]  # prediction time without / with


def tta_rows(board: Board) -> list[TtaRow]:
    """Entries with ``[train] tta`` on, each beside the entry of the same submission content and
    the same other ``[train]`` settings without it."""

    def key(entry) -> tuple[str, str]:
        train = {k: v for k, v in (entry.record.get("train") or {}).items() if k != "tta"}
        content = str(entry.record["submission"].get("content_sha256"))
        return content, repr(sorted(train.items()))

    plain = {}
    for i, e in enumerate(board.ranked):
        if (e.record.get("train") or {}).get("tta") in TTA_OFF and e.ensemble_of is None:
            plain.setdefault(key(e), i)
    rows = []
    for i, e in enumerate(board.ranked):
        mode = (e.record.get("train") or {}).get("tta")
        if mode in TTA_OFF or key(e) not in plain:
            continue
        j = plain[key(e)]
        other = board.ranked[j]
        without, with_tta = _value(board, j), _value(board, i)
        p = paired_p_value(board.statistic, board.runs[i], board.runs[j])
        rows.append(
            TtaRow(
                other.name,
                e.name,
                str(mode),
                without,
                with_tta,
                with_tta.value - without.value,
                None if math.isnan(p) else p,
                (
                    (other.record.get("timings") or {}).get("predict_s"),
                    (e.record.get("timings") or {}).get("predict_s"),
                ),
            )
        )
    return rows
