"""What each entry cost beside what it scored: the "Compute cost" section, its data, its figure.

Parameters and FLOPs per image are *reported by the run* (the sandboxed child counts them; see
:mod:`medbench.cost`): the same on any machine, checked for form but not for truth. Times,
device-hours and memory depend on the machine the run used. The accuracy-against-cost figure
puts the primary metric [95 % CI] against FLOPs per image when every ranked entry reports them,
else against training device-hours (log scale), and marks the Pareto front: the entries that no
other entry matches or beats on both (a better or equal metric at a lower or equal cost).

Records made before medbench recorded ``cost`` have no counts (shown as "–"); their times come
from the record's ``timings``, which hold the same measurements.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from medbench.leaderboard.board import Board
from medbench.leaderboard.figures import MAX_COLUMNS, _colour, _png, _style

AXES = {
    "flops_per_image": "FLOPs per image (reported by the run; log scale)",
    "train_device_hours": "training device-hours (fit time; depends on the machine; log scale)",
}
MIN_FIT_S = 1.0  # a fit shorter than this is drawn at it (0 has no place on a log scale)


@dataclass(frozen=True)
class Cost:
    """One run's cost as the leaderboard shows it (None: not reported or not recorded)."""

    params: int | None
    trainable_params: int | None
    flops_per_image: int | None
    flops_input: tuple[int, int] | None
    flops_input_note: str
    fit_s: float | None
    predict_s_per_case: float | None
    device: str | None
    device_hours: float | None
    peak_memory_mb: float | None
    peak_gpu_memory_mb: float | None

    @property
    def train_device_hours(self) -> float | None:
        """The fit's device-hours (``fit_s / 3600`` on ``device``)."""
        return None if self.fit_s is None else self.fit_s / 3600

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["flops_input"] = None if self.flops_input is None else list(self.flops_input)
        return out


def _number(v: Any) -> float | None:
    """A non-negative finite number from a record, else None (a sealed record can still lie)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        return None
    return v


def _count(v: Any) -> int | None:
    return int(v) if isinstance(v, int) and _number(v) is not None else None


def record_cost(record: dict[str, Any]) -> Cost:
    """The cost of a run from its record: ``record["cost"]``, or for a record made before
    medbench recorded it, the times in ``record["timings"]`` and no counts."""
    cost = record.get("cost")
    timings = record.get("timings") if isinstance(record.get("timings"), dict) else {}
    device = record.get("device_name") or record.get("device")
    if isinstance(cost, dict):
        size = cost.get("flops_input")
        ok = isinstance(size, list) and len(size) == 2 and all(_count(s) for s in size)
        note = cost.get("flops_input_note")
        return Cost(
            params=_count(cost.get("params")),
            trainable_params=_count(cost.get("trainable_params")),
            flops_per_image=_count(cost.get("flops_per_image")),
            flops_input=(int(size[0]), int(size[1])) if ok else None,
            flops_input_note=note if isinstance(note, str) else "",
            fit_s=_number(cost.get("fit_s")),
            predict_s_per_case=_number(cost.get("predict_s_per_case")),
            device=str(cost.get("device") or device or "") or None,
            device_hours=_number(cost.get("device_hours")),
            peak_memory_mb=_number(cost.get("peak_memory_mb")),
            peak_gpu_memory_mb=_number(cost.get("peak_gpu_memory_mb")),
        )
    predict_s = _number(timings.get("predict_s"))
    n_test = _count((record.get("task") or {}).get("n_test"))
    wall_s = _number(timings.get("child_wall_s"))
    return Cost(
        params=None,
        trainable_params=None,
        flops_per_image=None,
        flops_input=None,
        flops_input_note="",
        fit_s=_number(timings.get("fit_s")),
        predict_s_per_case=predict_s / n_test if predict_s is not None and n_test else None,
        device=str(device) if device else None,
        device_hours=None if wall_s is None else wall_s / 3600,
        peak_memory_mb=_number(record.get("peak_memory_mb")),
        peak_gpu_memory_mb=_number(record.get("peak_gpu_memory_mb")),
    )


def pareto_front(
    costs: Sequence[float | None], values: Sequence[float], *, higher_is_better: bool
) -> list[bool]:
    """Whether each entry is on the Pareto front of (cost, value): no other entry has a cost
    at most its cost and a value at least as good, with one of the two strictly better.

    Entries without a cost (None) or with an undefined value (NaN) are never on it; two entries
    with the same cost and value both are.
    """
    sign = 1.0 if higher_is_better else -1.0
    known = [
        i
        for i, (c, v) in enumerate(zip(costs, values, strict=True))
        if c is not None and not math.isnan(v)
    ]
    out = [False] * len(costs)
    for i in known:
        ci, vi = costs[i], sign * values[i]
        out[i] = not any(
            costs[j] <= ci and sign * values[j] >= vi and (costs[j] < ci or sign * values[j] > vi)
            for j in known
            if j != i
        )
    return out


def cost_axis(board: Board) -> str | None:
    """What the figure and the Pareto front measure cost by: ``flops_per_image`` when every
    ranked entry reports a positive count, else ``train_device_hours`` when any entry has a
    fit time (every record since the first has one)."""
    costs = [record_cost(e.record) for e in board.ranked]
    if costs and all(c.flops_per_image for c in costs):
        return "flops_per_image"
    if any(c.fit_s is not None for c in costs):
        return "train_device_hours"
    return None


def cost_data(board: Board) -> dict[str, Any]:
    """The board's cost summary for the JSON export: the axis and the entries on its front."""
    axis = cost_axis(board)
    return {
        "axis": axis,
        "pareto_front": [
            e.name for e, on in zip(board.ranked, _front(board, axis), strict=True) if on
        ],
        "reported_by_run": ["params", "trainable_params", "flops_per_image", "flops_input"],
        "depend_on_machine": [
            "fit_s",
            "predict_s_per_case",
            "device_hours",
            "peak_memory_mb",
            "peak_gpu_memory_mb",
        ],
    }


def _front(board: Board, axis: str | None) -> list[bool]:
    if axis is None:
        return [False] * len(board.ranked)
    p = board.spec.primary_metric
    costs = [getattr(record_cost(e.record), axis) for e in board.ranked]
    return pareto_front(
        costs,
        [e.value(p) for e in board.ranked],
        higher_is_better=board.spec.primary.higher_is_better,
    )


# --- the page section ----------------------------------------------------------------------------


def si(v: float | None, unit: str = "") -> str:
    """``1942323`` -> ``1.94 M``; ``376963072, "FLOPs"`` -> ``0.377 GFLOPs``; None -> ``–``."""
    if v is None:
        return "–"
    space = " " if unit else ""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        # FLOPs switch prefix a decade early ("0.377 GFLOPs", as papers write them)
        if v >= scale / (10 if unit == "FLOPs" else 1):
            return f"{v / scale:.3g} {prefix}{unit}"
    return f"{v:.3g}{space}{unit}"


def _seconds(s: float | None) -> str:
    if s is None:
        return "–"
    if s < 1:
        return f"{s * 1000:.3g} ms"
    if s < 120:
        return f"{s:.1f} s"
    return f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def _memory(host: float | None, gpu: float | None) -> str:
    def mib(v: float | None) -> str:
        return "–" if v is None else f"{v:.0f} MiB"

    return mib(host) if gpu is None else f"{mib(host)} / {mib(gpu)}"


def cost_section(board: Board) -> list[str]:
    """The page's "Compute cost" block: one row per entry (ranked first), the Pareto front."""
    if not board.rows:
        return []
    from medbench.leaderboard.markdown import _table, cell

    axis = cost_axis(board)
    front = dict(zip((e.name for e in board.ranked), _front(board, axis), strict=True))
    head = ["Entry", "params (trainable)", "FLOPs / image (input)", "fit time", "predict / case",
            "device", "device-hours", "peak memory (host / GPU)", "Pareto front"]  # fmt: skip
    table = [head]
    for row in board.rows:
        c = record_cost(row.entry.record)
        params = si(c.params)
        if (
            c.params is not None
            and c.trainable_params is not None
            and c.trainable_params != c.params
        ):
            params += f" ({si(c.trainable_params)})"
        flops = si(c.flops_per_image, "FLOPs")
        if c.flops_per_image is not None and c.flops_input is not None:
            flops += f" ({c.flops_input[0]}×{c.flops_input[1]})"
        table.append(
            [
                cell(row.entry.name),
                params,
                flops,
                _seconds(c.fit_s),
                _seconds(c.predict_s_per_case),
                cell(c.device or "–"),
                "–" if c.device_hours is None else f"{c.device_hours:.3g}",
                _memory(c.peak_memory_mb, c.peak_gpu_memory_mb),
                "✓" if front.get(row.entry.name) else "",
            ]
        )
    by = (
        "FLOPs per image"
        if axis == "flops_per_image"
        else "training device-hours (the fit time on the entry's device)"
    )
    return [
        "## Compute cost",
        "",
        "**Reported by the run** (the same on any machine): *params* (all parameters, trainable "
        "ones in brackets when fewer) and *FLOPs / image* (one forward pass of one image at the "
        "input shown, 2 per multiply-add of convolutions and matrix products, counted by "
        "`torch.utils.flop_counter`; element-wise operations and pooling not counted). The "
        "sandboxed child computes them, so medbench checks their form, not their truth. "
        "**Depend on the machine** (device, CPU threads, other load on it): *fit time* and "
        "*predict / case* (the test predictions' time over the test cases), timed by medbench "
        "inside the child; *device-hours*, the child's whole wall time (set-up, fit, "
        "predictions) measured by the parent, on the device named; *peak memory* of the run's "
        "process tree measured by the parent (host), and as torch reported it in the child "
        "(GPU). Compare those between runs on the same device. –: not reported (a submission "
        "that is not a torch model states no counts) or not recorded (records made before "
        "medbench recorded cost have times only).",
        "",
        f"*Pareto front* (✓, drawn in the accuracy-against-cost figure): the entries that no "
        f"other entry matches or beats on both `{board.spec.primary_metric}` and {by}, i.e. "
        "no other entry has a better or equal value at a lower or equal cost."
        if axis
        else "*Pareto front*: none (no entry has a recorded cost).",
        "",
        *_table(table),
    ]


# --- the figure ----------------------------------------------------------------------------------


def cost_caption(board: Board) -> str:
    """What the accuracy-against-cost figure plots, and what of it depends on the machine."""
    p = board.spec.primary_metric
    if cost_axis(board) == "flops_per_image":
        x = "FLOPs per image (reported by the run; the same on any machine)"
    else:
        x = (
            "training device-hours, the fit time on the entry's device (not every entry reports "
            "FLOPs; times depend on the machine: compare entries run on the same device; a fit "
            f"under {MIN_FIT_S:g} s is drawn at {MIN_FIT_S:g} s)"
        )
    return (
        f"*Test `{p}` [95 % CI] of each entry against {x}, log scale; marker shape: the "
        "device; black-edged markers and the dashed step line: the Pareto front.*"
    )


def figure_cost(board: Board) -> bytes | None:
    """Primary metric [95 % CI] against cost (log x), the Pareto front as a step line; None
    when fewer than two ranked entries have a cost."""
    axis = cost_axis(board)
    if axis is None:
        return None
    spec, p = board.spec, board.spec.primary_metric
    front = _front(board, axis)
    points = []
    for i, entry in enumerate(board.ranked[:MAX_COLUMNS]):
        x = getattr(record_cost(entry.record), axis)
        if x is None:
            continue
        x = max(x, MIN_FIT_S / 3600) if axis == "train_device_hours" else x
        m = entry.metric(p)
        v = entry.value(p)
        lo, hi = m.get("ci_low"), m.get("ci_high")
        points.append((i, entry, float(x), v, v if lo is None else lo, v if hi is None else hi))
    if len(points) < 2:
        return None
    devices = sorted({str(record_cost(e.record).device) for _, e, *_ in points})
    markers = "osD^vP*X"
    with _style():
        fig = Figure(figsize=(6.4, 4.6))
        ax = fig.subplots()
        for i, entry, x, v, lo, hi in points:
            device = str(record_cost(entry.record).device)
            ax.errorbar(
                [x], [v], yerr=[[max(v - lo, 0)], [max(hi - v, 0)]], color=_colour(i),
                marker=markers[devices.index(device) % len(markers)], ms=6, capsize=3, lw=1.2,
                mec="black" if front[i] else _colour(i), mew=1.2 if front[i] else 0.5,
            )  # fmt: skip
            ax.annotate(entry.name, (x, v), textcoords="offset points", xytext=(5, 4), fontsize=7)
        on = sorted((x, v) for i, _, x, v, *_ in points if front[i])
        if on:
            xs, vs = zip(*on, strict=True)
            ax.step(xs, vs, where="post", color="black", lw=1, ls="--", label="Pareto front")
        for k, device in enumerate(devices):  # the device of each marker shape, for the legend
            ax.plot([], [], markers[k % len(markers)], color="0.5", label=device)
        ax.set_xscale("log")
        xs_all = np.array([x for _, _, x, *_ in points])
        ax.set_xlim(xs_all.min() / 2, xs_all.max() * 3)
        note = (
            ""
            if len(board.ranked) <= MAX_COLUMNS
            else f" (best {MAX_COLUMNS} of {len(board.ranked)})"
        )
        ax.set(
            xlabel=AXES[axis],
            ylabel=f"test {p} [95 % CI] ({'higher' if spec.primary.higher_is_better else 'lower'} is better)",
            title=f"{spec.name}: accuracy against cost{note}",
        )
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=7)
        fig.tight_layout()
        return _png(fig)
