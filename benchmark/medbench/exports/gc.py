"""Grand Challenge's evaluation output: ``metrics.json`` with ``case`` and ``aggregates``.

The shape is the one grand-challenge.org documents for evaluation containers ("We recommend
storing results in two objects - ``case`` for the scores on individual cases, and ``aggregates``
for when there is one number per evaluation": comic/grand-challenge.org ``docs/evaluation.rst``;
the "Configure Scoring" page, grand-challenge.org/documentation/configure-scoring) and the one
evalutils writes (comic/evalutils ``evalutils/evalutils.py``, ``BaseEvaluation._metrics``):

- ``case``: column -> case index (a string, ``"0"``, ``"1"``...) -> value, as pandas'
  ``DataFrame.to_dict()`` gives a per-case table. Here the columns are ``case_id`` and the
  record's per-case columns (``y_true``, ``y_score``, ``dice_lungs``...).
- ``aggregates``: name -> statistic -> number. Here one entry per metric of the record, and per
  class as ``<metric>_<class>``, each ``{"value", "ci_low", "ci_high", "n", "n_undefined"}``
  (undefined: null), so that a phase's Score jsonpath is e.g. ``aggregates.auc.value`` and
  ``ci_low``/``ci_high`` can be extra columns. evalutils' describe() statistics (std, quartiles)
  are not written: the record's value and interval are what medbench ranks by.

Grand Challenge reads a JSONPath by splitting it at dots (``evaluation_extras.get_jsonpath``), so
a dot inside a name would make it unreachable: ``accuracy@0.5`` is written ``accuracy@0_5``.
"""

from __future__ import annotations

import json
from typing import Any

from medbench.errors import RecordError
from medbench.exports.source import Source, cell
from medbench.leaderboard.export import rounded

STATISTICS = ("value", "ci_low", "ci_high")
COUNTS = ("n", "n_undefined")


def key(name: str) -> str:
    """``name`` as a Grand Challenge JSONPath step (no dots)."""
    return name.replace(".", "_")


def _unique(source: Source, names: list[str]) -> list[str]:
    keys = [key(n) for n in names]
    if len(set(keys)) != len(keys):
        clash = sorted({n for n in names if keys.count(key(n)) > 1})
        raise RecordError(f"result record {source.path}: names {clash} clash once dots become _")
    return keys


def _number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _entries(source: Source) -> list[tuple[str, dict[str, Any]]]:
    """(name, metric) of every metric, then of every class as ``<metric>_<class>``."""
    entries = list(source.metrics())
    for cls, metrics in (source.record.get("per_class") or {}).items():
        if not isinstance(metrics, dict):
            raise RecordError(f"result record {source.path}: per_class.{cls} is not an object")
        entries += [(f"{name}_{cls}", m) for name, m in metrics.items()]
    for name, m in entries:
        if not isinstance(m, dict) or not all(_number(m.get(k)) for k in STATISTICS + COUNTS):
            raise RecordError(f"result record {source.path}: {name} must be an object of numbers")
    return entries


def _aggregate(metric: dict[str, Any]) -> dict[str, float | int | None]:
    out: dict[str, float | int | None] = {s: rounded(metric.get(s)) for s in STATISTICS}
    out.update({c: metric.get(c) for c in COUNTS})
    return out


def metrics_json(source: Source) -> dict[str, Any]:
    """The ``metrics.json`` object of one record (numbers rounded to 6 decimals)."""
    per_case = source.record["per_case"]
    columns = ["case_id", *(c for c in per_case if c != "case_id")]
    case = {
        k: {str(i): cell(v) for i, v in enumerate(per_case[c])}
        for k, c in zip(_unique(source, columns), columns, strict=True)
    }
    entries = _entries(source)
    keys = _unique(source, [n for n, _ in entries])
    aggregates = {k: _aggregate(m) for k, (_, m) in zip(keys, entries, strict=True)}
    return {"case": case, "aggregates": aggregates}


def render(source: Source) -> str:
    return json.dumps(metrics_json(source), indent=2, allow_nan=False) + "\n"
