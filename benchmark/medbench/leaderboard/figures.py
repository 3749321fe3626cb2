"""Leaderboard figures (matplotlib, Agg, PNG): ROC curves, reliability, per-case scores, rank blobs,
seeds.

Figures are drawn on bare :class:`~matplotlib.figure.Figure` objects (no pyplot state, no global
backend switch), under matplotlib's default style, and saved without the ``Software`` tag, so
the same records give byte-identical PNG files.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure

from medbench import metrics as M
from medbench.data.files import sha256_bytes
from medbench.leaderboard.board import Board

DPI = 100
N_BINS = M.N_BINS  # the ECE's bins
_RC = {"svg.hashsalt": "medbench", "font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8}


@contextmanager
def _style() -> Iterator[None]:
    with mpl.rc_context():
        mpl.rcdefaults()  # a user's matplotlibrc must not change the committed figures
        mpl.rcParams.update(_RC)
        yield


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _colour(i: int) -> tuple[float, float, float, float]:
    return mpl.colormaps["tab10"](i % 10)


# Entries drawn per figure: a figure keeps a readable, bounded size on any board; the tables
# list every entry, the figures the best ones (by the primary value) with a note of how many.
MAX_CURVES = 10
MAX_COLUMNS = 20


def _top(board: Board, k: int) -> tuple[int, str]:
    """How many of the ranked entries a figure draws, and the note to add to its title."""
    n = len(board.ranked)
    return (n, "") if n <= k else (k, f" (best {k} of {n} entries)")


def figure_roc(board: Board) -> bytes:
    with _style():
        fig = Figure(figsize=(5.5, 5))
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1], color="0.7", lw=1, ls="--")
        markers = "osD^v"
        shown, note = _top(board, MAX_CURVES)
        pairs = zip(board.ranked[:shown], board.tables[:shown], strict=True)
        for i, (entry, cases) in enumerate(pairs):
            y, s = cases["y_true"].astype(int), cases["y_score"]
            fpr, tpr = M.roc_curve(y, s)
            auc = entry.value("auc")
            ax.plot(fpr, tpr, color=_colour(i), lw=1.5, label=f"{entry.name} (AUC {auc:.3f})")
            points = entry.record.get("operating_points") or {}
            for k, name in enumerate(sorted(points)):
                t = points[name].get("threshold")
                if t is None:
                    continue
                pred = s >= t
                ax.plot(
                    pred[y == 0].mean(),
                    pred[y == 1].mean(),
                    markers[k % len(markers)],
                    color=_colour(i),
                    mec="black",
                    ms=7,
                    label=f"{entry.name} @ {name}",
                )
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1.01),
            xlabel="1 - specificity (false-positive rate)",
            ylabel="sensitivity (true-positive rate)",
            title=f"{board.spec.name}: test ROC, operating points chosen on val{note}",
        )
        ax.legend(loc="lower right")
        fig.tight_layout()
        return _png(fig)


def figure_reliability(board: Board, top: int = 3) -> bytes:
    with _style():
        fig = Figure(figsize=(5.5, 5))
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1], color="0.7", lw=1, ls="--", label="perfect calibration")
        index = {e.name: i for i, e in enumerate(board.ranked)}
        shown = [r.entry for r in board.rows if r.rank is not None][:top]
        for entry in shown:
            i = index[entry.name]
            y, s = board.tables[i]["y_true"], board.tables[i]["y_score"]
            bins = M.calibration_bins(s, n_bins=N_BINS)
            filled = [b for b in range(N_BINS) if (bins == b).any()]
            conf = [s[bins == b].mean() for b in filled]
            freq = [y[bins == b].mean() for b in filled]
            ax.plot(conf, freq, "o-", color=_colour(i), label=entry.name)
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1),
            xlabel=f"mean predicted probability ({N_BINS} equal-width bins, as the ECE)",
            ylabel="observed fraction positive",
            title=f"{board.spec.name}: reliability of the top {len(shown)}",
        )
        ax.legend(loc="upper left")
        fig.tight_layout()
        return _png(fig)


def case_columns(board: Board) -> list[tuple[str, str]]:
    """(column, label) of the per-case primary metric per class, or overall when not per class."""
    p = board.spec.primary_metric
    column = board.statistic.column or p
    per_class = [
        (f"{column}_{c}", c)
        for c in board.spec.classes
        if board.tables and f"{column}_{c}" in board.tables[0]
    ]
    if per_class:
        return per_class
    classes = board.spec.classes
    label = classes[0] if len(classes) == 1 else "mean over classes"
    return [(column, label)] if board.tables and column in board.tables[0] else []


def figure_cases(board: Board) -> bytes:
    columns = case_columns(board)
    shown, note = _top(board, MAX_COLUMNS)
    names = [e.name for e in board.ranked[:shown]]
    with _style():
        width = max(4.0, 1.2 + 0.9 * len(names)) * min(len(columns), 3)
        fig = Figure(figsize=(max(width, 5.5), 4.5))
        axes = np.atleast_1d(fig.subplots(1, len(columns), sharey=True, squeeze=False)[0])
        rng = np.random.default_rng(0)
        for ax, (column, label) in zip(axes, columns, strict=True):
            data = [t[column][~np.isnan(t[column])] for t in board.tables[:shown]]
            ax.boxplot(
                data,
                positions=range(len(names)),
                widths=0.6,
                showfliers=False,
                medianprops={"color": "black"},
            )
            for i, values in enumerate(data):
                ax.plot(
                    i + rng.uniform(-0.18, 0.18, values.size),
                    values,
                    ".",
                    color=_colour(i),
                    alpha=0.6,
                    ms=4,
                )
            ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
            ax.set_title(f"{board.spec.primary_metric}: {label}")
        axes[0].set_ylabel(f"per-case {board.spec.primary_metric}")
        fig.suptitle(
            f"{board.spec.name}: per-case scores{note}\n"
            "(box: quartiles, whiskers 1.5 IQR; points: cases)"
        )
        fig.tight_layout()
        return _png(fig)


def figure_ranks(board: Board) -> bytes:
    """Blob plot: circle area = how often an entry takes each rank over the bootstrap resamples."""
    samples = board.intervals.samples
    n, note = _top(board, MAX_COLUMNS)
    names = [e.name for e in board.ranked[:n]]
    with _style():
        fig = Figure(figsize=(max(5.0, 1.5 + 0.9 * n), 4.2))
        ax = fig.subplots()
        for i in range(n):
            ranks, counts = np.unique(samples[:, i], return_counts=True)
            freq = counts / samples.shape[0]
            ax.scatter(
                np.full(ranks.size, i),
                ranks,
                s=600 * freq,
                color=_colour(i),
                alpha=0.7,
                edgecolors="none",
            )
            ax.vlines(i, board.intervals.low[i], board.intervals.high[i], color="black", lw=1)
            ax.plot(i, np.median(samples[:, i]), "x", color="black", ms=8)
        ax.set_xticks(range(n), names, rotation=30, ha="right")
        # all entries drawn: ranks 1..n; the best n of more: down to the worst rank they reach
        lowest = int(samples[:, :n].max()) if note else n
        ax.set_yticks(range(1, lowest + 1, max(1, lowest // 20)))
        ax.set_ylim(lowest + 0.5, 0.5)
        ax.set(
            ylabel="rank",
            title=f"{board.spec.name}: rank stability over {samples.shape[0]} bootstrap "
            f"resamples{note}\n"
            "(area = frequency of a rank, x = median, line = 95 % interval)",
        )
        fig.tight_layout()
        return _png(fig)


def figure_seeds(board: Board) -> bytes:
    """Each entry's primary value per seed (points, seeds in order from left to right), the
    value the board shows (line: the mean over seeds) and its 95 % interval (bar): the two-level
    bootstrap interval for an entry with several seeds, the recorded CI for an entry with one."""
    spec = board.spec
    metric = spec.primary_metric
    n, note = _top(board, MAX_COLUMNS)
    names = [e.name for e in board.ranked[:n]]
    with _style():
        fig = Figure(figsize=(max(6.0, 1.5 + 0.9 * n), 4.8))
        ax = fig.subplots()
        for i, entry in enumerate(board.ranked[:n]):
            shown = board.summary(i)
            if shown.ci_low is not None and shown.ci_high is not None:
                ax.bar(
                    i, shown.ci_high - shown.ci_low, bottom=shown.ci_low, width=0.56,
                    color=_colour(i), alpha=0.3, edgecolor=_colour(i), linewidth=1,
                )  # fmt: skip
            ax.hlines(shown.value, i - 0.28, i + 0.28, color="black", lw=1.5)
            values = np.array(entry.seed_values(metric), float)
            dx = np.linspace(-0.16, 0.16, values.size) if values.size > 1 else np.zeros(1)
            ax.plot(i + dx, values, "o", color=_colour(i), mec="black", mew=0.6, ms=5)
        ax.use_sticky_edges = False  # a margin below the lowest bar, as above the highest
        ax.autoscale_view()
        ax.set_xticks(range(n), names, rotation=30, ha="right")
        ax.set_xlim(-0.6, n - 0.4)
        better = "higher" if spec.primary.higher_is_better else "lower"
        ax.set(
            ylabel=f"test {metric} ({better} is better)",
            title=f"{spec.name}: {metric} per seed{note}\npoints: seeds; line: mean over seeds\n"
            "bar: 95 % interval (two-level bootstrap; one seed: recorded CI)",
        )
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        return _png(fig)


def figure_efficiency(board: Board) -> bytes:
    """Primary metric [95 % CI] against training cases (log x), one line per entry."""
    eff = board.efficiency
    spec = board.spec
    with _style():
        fig = Figure(figsize=(6, 4.4))
        ax = fig.subplots()
        for i, curve in enumerate(eff.curves[:MAX_CURVES]):
            dodge = 1.025 ** (i - (min(len(eff.curves), MAX_CURVES) - 1) / 2)  # apart, not on top
            n = np.array([p.n_train for p in curve.points], float) * dodge
            v = np.array([p.value for p in curve.points], float)
            lo = np.array([p.value if p.ci_low is None else p.ci_low for p in curve.points], float)
            hi = np.array(
                [p.value if p.ci_high is None else p.ci_high for p in curve.points], float
            )
            ax.errorbar(
                n, v, yerr=[v - lo, hi - v], color=_colour(i), marker="o", ms=4, lw=1.5,
                capsize=3, label=curve.entry,
            )  # fmt: skip
        ax.set_xscale("log")
        ticks = sorted({p.n_train for c in eff.curves for p in c.points})
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        note = (
            "" if len(eff.curves) <= MAX_CURVES else f" (first {MAX_CURVES} of {len(eff.curves)})"
        )
        ax.set(
            xlabel="training cases (log scale)",
            ylabel=f"test {spec.primary_metric} [95 % CI]",
            title=f"{spec.name}: data efficiency{note}",
        )
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        fig.tight_layout()
        return _png(fig)


def figures_for(board: Board) -> dict[str, bytes]:
    """``{suffix: png}`` for a task: ROC and reliability (binary), per-case (segmentation), ranks,
    and the seeds figure when an entry has several seeds."""
    if not board.ranked:
        return {}
    out = {}
    if board.spec.kind == "binary" and all("y_score" in t for t in board.tables):
        out["roc"] = figure_roc(board)
        out["reliability"] = figure_reliability(board)
    if board.spec.kind in ("multilabel-segmentation", "instance-segmentation") and case_columns(
        board
    ):
        out["cases"] = figure_cases(board)
    if board.intervals is not None:
        out["ranks"] = figure_ranks(board)
    if board.multi_seed:
        out["seeds"] = figure_seeds(board)
    if (worst := leader_gallery(board)) is not None:
        out["worst"] = worst
    if board.efficiency is not None and board.efficiency.curves:
        out["efficiency"] = figure_efficiency(board)
    from medbench.leaderboard.cost import figure_cost  # it draws with this module's style

    if (cost := figure_cost(board)) is not None:
        out["cost"] = cost
    return out


def gallery_split(board: Board) -> str:
    """The split the leader's worst-cases gallery shows (records before ``gallery.split``: test)."""
    gallery = board.ranked[0].record.get("gallery") if board.ranked else None
    split = gallery.get("split") if isinstance(gallery, dict) else None
    return split if split in ("val", "test") else "test"


def gallery_title(board: Board) -> str:
    if gallery_split(board) == "val":
        return "The leader's worst validation cases (no test labels shown)"
    return "The leader's worst test cases (test labels shown)"


def gallery_caption(board: Board) -> str:
    """What the gallery shows, and whether that gives away test labels."""
    gallery = board.ranked[0].record.get("gallery") if board.ranked else None
    if isinstance(gallery, dict) and gallery.get("images") is False:
        return _gallery_caption(board)[:-1] + (
            " The images are not drawn, only the outlines on black: the data set's terms do "
            "not allow redistributing its images.*"
        )
    return _gallery_caption(board)


def _gallery_caption(board: Board) -> str:
    p = board.spec.primary_metric
    if gallery_split(board) == "val":
        return (
            f"*The leader's worst validation cases by per-case `{p}`, chosen among its "
            "validation predictions and drawn with the validation truth: no test image or label "
            "is shown.*"
        )
    return (
        f"*The leader's worst test cases by per-case `{p}`, drawn with their test truth: this "
        "figure shows test labels. A competition with hidden test labels runs with "
        "`medbench run --gallery-split val`, which draws validation cases instead.*"
    )


def leader_gallery(board: Board) -> bytes | None:
    """The leader's worst-cases PNG stored by the runner beside its record, if present and intact."""
    leader = board.ranked[0]
    gallery = leader.record.get("gallery")
    if not gallery or not gallery.get("file"):
        return None
    path = leader.files[0].parent / gallery["file"]
    if not path.is_file():
        return None
    png = path.read_bytes()
    return png if sha256_bytes(png) == gallery["sha256"] else None
