"""Result records -> leaderboards: markdown pages with figures, or the same numbers as CSV/JSON.

Pure rendering: reads verified result records (a record whose hash does not match raises
:class:`~medbench.errors.RecordError` naming the file), ranks the entries of each task with
paired tests and the tie rule of :func:`~medbench.leaderboard.stats.assign_ranks`, and writes
files whose bytes depend only on the records (no timestamps, fixed seeds, sorted iteration).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from medbench.data.files import write_bytes_atomic, write_text_atomic
from medbench.errors import MedbenchError
from medbench.leaderboard.board import Board, Row, build_board
from medbench.leaderboard.efficiency import data_efficiency, is_partial
from medbench.leaderboard.entries import Entry, load_task_records, select
from medbench.leaderboard.export import board_data, render_csv, render_json
from medbench.leaderboard.figures import figures_for
from medbench.leaderboard.html import ASSETS, asset_text, render_index_page, render_task_page
from medbench.leaderboard.markdown import render_index, render_markdown
from medbench.leaderboard.stats import Ranking, assign_ranks, paired_p_value, statistic_for
from medbench.tasks import get_task

FORMATS = ("markdown", "csv", "json", "html", "all")
SITE = "site"  # with --format all, the HTML site goes to <out>/site/


def build_boards(results_dir: Path, *, tasks: list[str] | None = None) -> list[Board]:
    """The ranked board of every task (sorted by name) that has records under ``results_dir``."""
    found = load_task_records(Path(results_dir), tasks)
    boards = []
    for name in sorted(found):
        spec = get_task(name)
        partial = [pr for pr in found[name] if is_partial(pr[1])]
        board = build_board(select(spec, [pr for pr in found[name] if not is_partial(pr[1])]))
        entries = [r.entry for r in board.rows]
        efficiency = data_efficiency(spec, partial, entries, board.split_sizes["train"])
        boards.append(dataclasses.replace(board, efficiency=efficiency))
    return boards


def publish(
    results_dir: Path,
    out_dir: Path,
    *,
    tasks: list[str] | None = None,
    format: str = "markdown",
    submissions_root: Path | None = None,
) -> list[Path]:
    """Render the leaderboards of ``tasks`` (default: every task with records); return the files.

    ``markdown`` writes ``<out>/<task>.md``, figures under ``<out>/figures/`` and, when
    ``tasks`` is None, the index ``<out>/README.md``; ``csv`` and ``json`` write
    ``<out>/<task>.csv`` / ``<out>/<task>.json`` with the same numbers; ``html`` writes the
    static site (``<out>/<task>.html``, ``index.html``, ``figures/``, ``assets/``); ``all``
    writes markdown, CSV and JSON to ``<out>`` and the site to ``<out>/site/``. Submission links
    point to ``submissions_root/<folder>`` when given, else to each record's ``submission.path``
    (relative to the working directory).
    """
    if format not in FORMATS:
        raise MedbenchError(f"leaderboard format must be one of {list(FORMATS)}; got {format!r}")
    out_dir, results_dir = Path(out_dir), Path(results_dir)
    if not results_dir.is_dir():
        raise MedbenchError(f"results folder {results_dir} does not exist (or is not a folder)")
    if out_dir.exists() and not out_dir.is_dir():
        raise MedbenchError(f"--out {out_dir} is a file, not a folder")
    boards = build_boards(results_dir, tasks=tasks)
    if not boards:  # nothing is written: an empty index must not replace a published one
        raise MedbenchError(
            f"no result records under {results_dir}"
            + (f" for {', '.join(tasks)}" if tasks else "")
            + "; run `medbench run submissions/<name>` first"
        )
    figures = (
        {b.spec.name: figures_for(b) for b in boards}
        if format in ("markdown", "html", "all")
        else {}
    )
    targets = (
        [("markdown", out_dir), ("csv", out_dir), ("json", out_dir), ("html", out_dir / SITE)]
        if format == "all"
        else [(format, out_dir)]
    )
    written: list[Path] = []
    for kind, folder in targets:
        written += _render(
            kind, boards, folder, figures, index=tasks is None, submissions_root=submissions_root
        )
    return written


def _render(
    kind: str,
    boards: list[Board],
    out_dir: Path,
    figures: dict[str, dict[str, bytes]],
    *,
    index: bool,
    submissions_root: Path | None,
) -> list[Path]:
    written: list[Path] = []
    for board in boards:
        name = board.spec.name
        if kind in ("csv", "json"):
            text = render_csv(board) if kind == "csv" else render_json(board)
            written.append(_write(out_dir / f"{name}.{kind}", text))
            continue
        pngs = []
        for suffix, png in figures[name].items():
            path = out_dir / "figures" / f"{name}-{suffix}.png"
            write_bytes_atomic(path, png)
            pngs.append(path)
        if kind == "html":
            page = render_task_page(board, out_dir, pngs, submissions_root=submissions_root)
            written += [_write(out_dir / f"{name}.html", page), *pngs]
        else:
            page = render_markdown(board, out_dir, pngs, submissions_root=submissions_root)
            written += [_write(out_dir / f"{name}.md", page), *pngs]
    if kind == "markdown" and index:
        written.append(_write(out_dir / "README.md", render_index(boards)))
    if kind == "html":
        if index:
            written.append(_write(out_dir / "index.html", render_index_page(boards)))
        written += [_write(out_dir / "assets" / a, asset_text(a)) for a in ASSETS]
    return written


def _write(path: Path, text: str) -> Path:
    write_text_atomic(path, text)
    return path


__all__ = [
    "FORMATS",
    "Board",
    "Entry",
    "Ranking",
    "Row",
    "assign_ranks",
    "board_data",
    "build_board",
    "build_boards",
    "paired_p_value",
    "publish",
    "statistic_for",
]
