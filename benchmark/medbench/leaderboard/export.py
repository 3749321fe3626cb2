"""A :class:`Board` as plain data: the JSON and CSV exports, and the numbers the markdown shows.

Numbers are rounded to 6 decimals here, once; the markdown formats these same rounded numbers,
so the three formats agree digit for digit.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from medbench.leaderboard.board import Board, Row
from medbench.leaderboard.cost import cost_data, record_cost
from medbench.leaderboard.stats import N_PAIRED, N_RANK, SEED, SEED_METHOD
from medbench.tasks import Reference, TaskSpec

DIGITS = 6  # decimals kept in CSV/JSON; markdown shows 3 of them
# medbench.leaderboard.cost: counts reported by the run, then what depends on the machine
COST_COLUMNS = ("params", "trainable_params", "flops_per_image", "predict_s_per_case",
                "device_hours", "on_pareto_front")  # fmt: skip


def rounded(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) or math.isinf(v) else round(v, DIGITS)


# --- plain data ----------------------------------------------------------------------------------


def other_metrics(board: Board) -> list[str]:
    present = {m for r in board.rows for m in r.entry.record.get("metrics", {})}
    return [m for m in board.spec.metric_names if m != board.spec.primary_metric and m in present]


def class_columns(board: Board) -> list[str]:
    spec = board.spec
    if not spec.primary.per_class:
        return []
    present = {
        c
        for r in board.rows
        for c, m in r.entry.record.get("per_class", {}).items()
        if spec.primary_metric in m
    }
    present |= {c for ref in _anchors(spec) for c, _ in ref.get("per_class", {}).items()}
    return [c for c in spec.classes if c in present]


def _entry_data(board: Board, row: Row) -> dict[str, Any]:
    spec, e, shown = board.spec, row.entry, row.summary
    mean_sd = e.seed_mean_sd(spec.primary_metric)
    timings = e.record.get("timings") or {}
    return {
        "status": "ok",
        "rank": row.rank,
        "tied": row.tied,
        "rank_label": row.rank_label,
        "submission": e.name,
        "summary": e.record["submission"].get("summary", ""),
        "path": e.path,
        "content_sha256": e.record["submission"].get("content_sha256"),
        "value": rounded(shown.value),
        "ci_low": rounded(shown.ci_low),
        "ci_high": rounded(shown.ci_high),
        "ci_method": shown.method,
        "seeds": list(e.seeds),
        "seed_mean": rounded(mean_sd[0]) if mean_sd else None,
        "seed_sd": rounded(mean_sd[1]) if mean_sd else None,
        "seed_values": [rounded(v) for v in e.seed_values(spec.primary_metric)],
        "delta": rounded(row.delta),
        "p_raw": rounded(row.p_raw),
        "p_holm": rounded(row.p_holm),
        # several seeds: the largest count among them (each seed's mean leaves out its own)
        "n_undefined": max(
            _undefined((r.get("metrics") or {}).get(spec.primary_metric) or {}) for r in e.records
        ),
        "metrics": {m: rounded(e.value(m)) for m in other_metrics(board)},
        "metrics_n_undefined": {m: _undefined(e.metric(m)) for m in other_metrics(board)},
        "per_class": {
            c: rounded(e.class_value(c, spec.primary_metric)) for c in class_columns(board)
        },
        "per_class_n_undefined": {
            c: _undefined(e.class_metric(c, spec.primary_metric)) for c in class_columns(board)
        },
        "rank_low": row.rank_low,
        "rank_high": row.rank_high,
        "device": e.record.get("device_name") or e.record.get("device"),
        "isolation": e.isolation,
        "fit_s": rounded(timings.get("fit_s")),
        "cost": _rounded_all(record_cost(e.record).to_dict()),
        "records": [str(f.name) for f in e.files],
    }


SEED_REFERENCES = (
    "Owen 2007, The pigeonhole bootstrap, Annals of Applied Statistics 1(2):386-411",
    "Davison & Hinkley 1997, Bootstrap Methods and their Application, section 3.8 "
    "(hierarchical data)",
    "Bouthillier et al. 2021, Accounting for variance in machine learning benchmarks, MLSys",
)


def _rounded_all(data: dict[str, Any]) -> dict[str, Any]:
    return {k: rounded(v) if isinstance(v, float) else v for k, v in data.items()}


def _undefined(metric: dict[str, Any]) -> int:
    return int(metric.get("n_undefined") or 0)


def _anchors(spec: TaskSpec) -> list[dict[str, Any]]:
    """References grouped by source: one row per paper (or paper + model), values per metric."""
    rows: dict[str, dict[str, Any]] = {}
    for ref in spec.references:
        row = rows.setdefault(
            ref.source,
            {
                "status": "anchor",
                "source": ref.source,
                "value": None,
                "metrics": {},
                "per_class": {},
                "notes": [],
            },
        )
        if ref.metric == spec.primary_metric:
            row["value"] = rounded(ref.value)
            row["per_class"] = {c: rounded(v) for c, v in ref.per_class}
        else:
            row["metrics"][ref.metric] = rounded(ref.value)
        if not any(ref.note in note for note in row["notes"]):
            row["notes"].append(ref.note)
    return [{**r, "note": "; ".join(r.pop("notes"))} for r in rows.values()]


def best_anchor(spec: TaskSpec) -> Reference | None:
    refs = [r for r in spec.references if r.metric == spec.primary_metric]
    if not refs:
        return None
    sign = 1 if spec.primary.higher_is_better else -1
    return max(refs, key=lambda r: (sign * r.value, r.source))


def board_data(board: Board) -> dict[str, Any]:
    """Everything on the page as JSON-ready data (numbers rounded to 6 decimals)."""
    spec = board.spec
    names = [e.name for e in board.ranked]
    rounds = [
        [
            {
                "leader": names[c.leader],
                "other": names[c.other],
                "p_raw": rounded(c.p_raw),
                "p_holm": rounded(c.p_holm),
            }
            for c in rnd
        ]
        for rnd in (board.ranking.rounds if board.ranking else ())
    ]
    return {
        "task": {
            "name": spec.name,
            "version": spec.version,
            "title": spec.title,
            "kind": spec.kind,
            "dataset": spec.dataset,
            "data_sources": board.data_sources,
            "data_sha256": board.data_hashes,
            "split_sha256": spec.split_sha256,
            "split_note": spec.split_note,
            "split_sizes": board.split_sizes,
            "n_test": board.n_test,
            "n_compared": board.n_common,
        },
        "primary_metric": spec.primary_metric,
        "higher_is_better": spec.primary.higher_is_better,
        "paired_test": board.paired_test,
        "alpha": board.alpha,
        "rank_interval": {"resamples": N_RANK, "seed": SEED, "level": 0.95},
        "seed_statistics": {
            "two_level": board.multi_seed,
            "method": SEED_METHOD.format(n=N_PAIRED, seed=SEED),
            "applies_to": "entries with several seeds: value (mean over seeds), CI, paired "
            "tests and rank interval; an entry with one seed keeps its run's numbers",
            "references": list(SEED_REFERENCES),
        },
        "entries": [_entry_data(board, r) for r in board.rows],
        "anchors": _anchors(spec),
        "failed": [
            {
                "status": "failed",
                "submission": f.name,
                "seed": f.seed,
                "reason": f.reason,
                "record": f.file.name,
            }
            for f in board.failed
        ],
        "excluded": [
            {"record": f"{x.file.parent.name}/{x.file.name}", "reason": x.reason}
            for x in board.excluded
        ],
        "rounds": rounds,
        "data_efficiency": _efficiency_data(board),
        "subgroups": _subgroup_data(board),
        "cost": cost_data(board),
        "architectures": _architecture_data(board),
    }


def _architecture_data(board: Board) -> dict[str, Any] | None:
    from medbench.leaderboard.architectures import architecture_table

    table = architecture_table(board)
    if table is None:
        return None
    return {
        "columns": [key for key, _, _ in table["columns"]],
        "rows": [
            {
                "entry": r.entry,
                "architecture": r.architecture,
                "loss": r.loss,
                "settings": r.settings,
                "rank_label": r.rank_label,
                "values": {
                    k: {
                        "value": rounded(v.value),
                        "ci_low": rounded(v.ci_low),
                        "ci_high": rounded(v.ci_high),
                    }
                    for k, v in r.cells.items()
                },  # fmt: skip
            }
            for r in table["rows"]
        ],
        "anchors": [{"source": s, "values": c} for s, c in table["anchors"]],
    }


def _subgroup_data(board: Board) -> list[dict[str, Any]]:
    from medbench.leaderboard.subgroups import subgroup_tables

    return [
        {
            "name": t.name,
            "counts": t.counts,
            "entries": [
                {
                    "submission": name,
                    "values": {
                        lab: {
                            "value": rounded(c.value),
                            "ci_low": rounded(c.ci_low),
                            "ci_high": rounded(c.ci_high),
                            "n": c.n,
                        }
                        for lab, c in cells.items()
                    },
                    "gaps": [
                        {
                            "subgroup": g.label,
                            "value": rounded(g.value),
                            "p": rounded(g.p),
                            "p_holm": rounded(g.p_holm),
                            "flagged": g.flagged,
                        }
                        for g in gaps
                    ],
                }  # fmt: skip
                for name, cells, gaps in t.rows
            ],
        }
        for t in subgroup_tables(board)
    ]


def _efficiency_data(board: Board) -> list[dict[str, Any]]:
    eff = board.efficiency
    if eff is None:
        return []
    return [
        {
            "entry": c.entry,
            "points": [
                {
                    "fraction": p.fraction,
                    "n_train": p.n_train,
                    "value": rounded(p.value),
                    "ci_low": rounded(p.ci_low),
                    "ci_high": rounded(p.ci_high),
                    "seeds": list(p.seeds),
                }
                for p in c.points
            ],
        }
        for c in eff.curves
    ]


def render_json(board: Board) -> str:
    return json.dumps(board_data(board), indent=2, sort_keys=False, allow_nan=False) + "\n"


def _csv_rows(data: dict[str, Any], others: list[str], classes: list[str]) -> list[dict[str, Any]]:
    p = data["primary_metric"]
    rows = []
    for e in data["entries"]:
        row = {
            "status": "ok",
            "rank": e["rank"],
            "tied": e["tied"],
            "submission": e["submission"],
            "seeds": " ".join(map(str, e["seeds"])),
            p: e["value"],
            f"{p}_ci_low": e["ci_low"],
            f"{p}_ci_high": e["ci_high"],
            f"{p}_n_undefined": e["n_undefined"],
            f"{p}_seed_mean": e["seed_mean"],
            f"{p}_seed_sd": e["seed_sd"],
            f"{p}_seed_values": " ".join("nan" if v is None else repr(v) for v in e["seed_values"]),
            f"{p}_ci_method": e["ci_method"],
            "delta_to_leader": e["delta"],
            "p_raw": e["p_raw"],
            "p_holm": e["p_holm"],
            "rank_low": e["rank_low"],
            "rank_high": e["rank_high"],
            "device": e["device"],
            "isolation": e["isolation"],
            "fit_s": e["fit_s"],
            **{k: e["cost"][k] for k in COST_COLUMNS if k != "on_pareto_front"},
            "on_pareto_front": e["submission"] in data["cost"]["pareto_front"],
        }
        for m in others:
            row[m], row[f"{m}_n_undefined"] = e["metrics"][m], e["metrics_n_undefined"][m]
        for c in classes:
            row[f"{p}_{c}"], row[f"{p}_{c}_n_undefined"] = (
                e["per_class"][c],
                e["per_class_n_undefined"][c],
            )
        rows.append(row)
    for a in data["anchors"]:
        row = {"status": "anchor", "submission": a["source"], p: a["value"], "note": a["note"]}
        row.update({m: a["metrics"][m] for m in others if m in a["metrics"]})
        row.update({f"{p}_{c}": a["per_class"][c] for c in classes if c in a["per_class"]})
        rows.append(row)
    for f in data["failed"]:
        rows.append(
            {
                "status": "failed",
                "submission": f["submission"],
                "seeds": f["seed"],
                "note": f["reason"],
            }
        )
    return rows


def csv_value(v: Any) -> str:
    """A CSV cell: empty for None, ``true``/``false``, floats as ``repr`` (shortest exact)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def render_csv(board: Board) -> str:
    """One line per ranked entry, anchor and failed run; the columns of the markdown table."""
    data = board_data(board)
    p = data["primary_metric"]
    others, classes = other_metrics(board), class_columns(board)
    header = [
        "status", "rank", "tied", "submission", "seeds", p, f"{p}_ci_low", f"{p}_ci_high",
        f"{p}_n_undefined", f"{p}_seed_mean", f"{p}_seed_sd", f"{p}_seed_values", f"{p}_ci_method",
        "delta_to_leader", "p_raw", "p_holm",
        *others, *(f"{m}_n_undefined" for m in others), *(f"{p}_{c}" for c in classes),
        *(f"{p}_{c}_n_undefined" for c in classes), "rank_low", "rank_high", "device", "isolation", "fit_s", *COST_COLUMNS, "note",
    ]  # fmt: skip
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, restval="", lineterminator="\n")
    writer.writeheader()
    for row in _csv_rows(data, others, classes):
        writer.writerow({k: csv_value(v) for k, v in row.items()})
    return out.getvalue()
