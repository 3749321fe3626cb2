"""What a run cost: the model's size and FLOPs (reported by the run) beside its times and memory.

Two kinds of figure, kept apart because they deserve different trust:

- **reported by the run**: ``params``, ``trainable_params``, ``flops_per_image`` and the input
  they were counted at. The sandboxed child computes them (:meth:`Submission.cost
  <medbench.submission.api.Submission.cost>`; the standard trainer counts its model), so they
  are checked for shape here (non-negative integers, at most as many trainable parameters as
  parameters) but cannot be checked for truth. They do not depend on the machine.
- **timed or measured**: ``child_wall_s`` and the peak host memory of the run's process tree are
  measured by the parent; ``fit_s`` and ``predict_s`` are timed by medbench's code inside the
  child (around the submission's ``fit`` and ``predict``), the peak GPU memory read there from
  torch. They depend on the machine (device, threads, load), so compare them across entries run
  on the same device only. ``device_hours`` = ``child_wall_s / 3600`` on ``device``.

This module imports nothing heavy: the child checks a submission's answer with it before writing
its result file, and the parent checks that file with it again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

COUNTS = ("params", "trainable_params", "flops_per_image")
# Beyond any model (a trillion parameters, a peta-FLOP per image): a larger "count" is garbage.
MAX_COUNT = 10**18
MAX_SIDE = 1 << 16
NOTE_LIMIT = 200


def check_reported(value: Any) -> dict[str, Any] | None:
    """A run's reported cost, checked: None, or ``{params, trainable_params, flops_per_image,
    flops_input, flops_input_note}`` with each count None ("not reported") or an integer in
    ``[0, 10**18]``, ``flops_input`` None or ``[H, W]`` (positive), the note a short string.

    Raises ValueError naming the first bad field and the value seen.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"cost must be null or an object; got {_shown(value)}")
    unknown = sorted(set(map(str, value)) - {*COUNTS, "flops_input", "flops_input_note"})
    if unknown:
        raise ValueError(f"cost has unknown field(s) {unknown}")
    out: dict[str, Any] = {}
    for key in COUNTS:
        v = value.get(key)
        if v is not None and not _count(v):
            raise ValueError(
                f"cost.{key} must be null or an integer in [0, 10**18]; got {_shown(v)}"
            )
        out[key] = None if v is None else int(v)
    if (
        out["params"] is not None
        and out["trainable_params"] is not None
        and out["trainable_params"] > out["params"]
    ):
        raise ValueError(
            f"cost.trainable_params ({out['trainable_params']}) exceeds cost.params "
            f"({out['params']})"
        )
    size = value.get("flops_input")
    if size is not None and not (
        isinstance(size, (list, tuple))
        and len(size) == 2
        and all(_count(s) and 0 < s <= MAX_SIDE for s in size)
    ):
        raise ValueError(
            f"cost.flops_input must be null or [H, W] (positive integers); got {_shown(size)}"
        )
    out["flops_input"] = None if size is None else [int(size[0]), int(size[1])]
    note = value.get("flops_input_note", "")
    if not isinstance(note, str):
        raise ValueError(f"cost.flops_input_note must be a string; got {_shown(note)}")
    out["flops_input_note"] = note[:NOTE_LIMIT]
    return out


def _count(v: Any) -> bool:
    # floats are refused too: a count that went through a float may have lost digits
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_COUNT


def _shown(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def run_cost(
    reported: Mapping[str, Any] | None,
    timings: Mapping[str, float],
    *,
    n_test: int | None,
    device: str,
    peak_memory_mb: float | None,
    peak_gpu_memory_mb: float | None,
) -> dict[str, Any]:
    """The record's ``cost``: the run's reported counts (None where not reported) and its
    times, device-hours and peak memory (see the module doc for who measured what)."""
    reported = reported or {}
    fit_s, predict_s, wall_s = (timings.get(k) for k in ("fit_s", "predict_s", "child_wall_s"))
    per_case = predict_s / n_test if predict_s is not None and n_test else None
    return {
        **{k: reported.get(k) for k in COUNTS},
        "flops_input": reported.get("flops_input"),
        "flops_input_note": reported.get("flops_input_note", ""),
        "fit_s": fit_s,
        "predict_s": predict_s,
        "predict_s_per_case": None if per_case is None else round(per_case, 6),
        "device": device,
        "device_hours": None if wall_s is None else round(wall_s / 3600, 6),
        "peak_memory_mb": peak_memory_mb,
        "peak_gpu_memory_mb": peak_gpu_memory_mb,
    }


def summed(costs: list[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """The cost of an ensemble: the sum of its members' counts and times (each was trained and
    each predicts); a count is None unless every member reported it. None if any member has no
    ``cost`` at all (a record from before medbench recorded it)."""
    if not costs or any(c is None for c in costs):
        return None

    def total(key: str, digits: int = 3) -> Any:
        values = [c.get(key) for c in costs]
        if any(v is None or not _finite(v) for v in values):
            return None
        return sum(values) if key in COUNTS else round(sum(values), digits)

    return {
        **{k: total(k) for k in COUNTS},
        "flops_input": None,
        "flops_input_note": "sum over the members",
        "fit_s": total("fit_s"),
        "predict_s": total("predict_s"),
        "predict_s_per_case": total("predict_s_per_case", 6),
        "device": " + ".join(sorted({str(c.get("device")) for c in costs})),
        "device_hours": total("device_hours", 6),
        "peak_memory_mb": None,
        "peak_gpu_memory_mb": None,
    }


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
