"""One CSV row per test case: a record's per-case truth and scores, MedMNIST-style.

Classification follows MedMNIST's ``save_results`` (MedMNIST/MedMNIST ``medmnist/evaluator.py``,
v1: columns ``id``, ``true_<i>``, ``score_<j>``): ``id`` is medbench's case id, ``true_0`` the true
class index. A multi-class record has one ``score_<j>`` per class ``j`` (in the order of
``TaskSpec.classes``); a binary one has the probability of the positive class only, ``score_1``
(the column MedMNIST's ``getAUC`` reads for binary tasks; medbench predicts no ``score_0``).
A segmentation record has ``id`` and the record's per-case columns, as recorded (``dice_lungs``,
``dice``, ``hd95_heart``...; an instance task's ``dsb_ap``, ``f1_50``...).

Floats are rounded to 6 decimals and written as ``repr`` (as ``medbench leaderboard --format
csv`` writes them); an undefined value is an empty cell.
"""

from __future__ import annotations

import csv
import io
import re

from medbench.errors import RecordError
from medbench.exports.source import Source, cell
from medbench.leaderboard.export import csv_value

# The per-case column of class j's probability, as medbench.metric_specs names it for a
# multi-class task (a test checks the two agree).
PROBABILITY = "p{j}"


def columns(source: Source) -> dict[str, list]:
    """CSV header -> the record's values, in row order."""
    if source.kind == "binary":
        return {
            "id": source.case_ids,
            "true_0": source.column("y_true"),
            "score_1": source.column("y_score"),
        }
    if source.kind == "multiclass":
        wanted = [PROBABILITY.format(j=j) for j in range(len(source.spec.classes))]
        found = [k for k in source.record["per_case"] if re.fullmatch(r"p\d+", k)]
        if sorted(found) != sorted(wanted):
            raise RecordError(
                f"result record {source.path} has class probabilities {found}; task "
                f"{source.spec.name} has {len(wanted)} classes ({', '.join(wanted)})"
            )
        scores = {f"score_{j}": source.column(p) for j, p in enumerate(wanted)}
        return {"id": source.case_ids, "true_0": source.column("y_true"), **scores}
    per_case = source.record["per_case"]
    return {"id": source.case_ids, **{k: v for k, v in per_case.items() if k != "case_id"}}


def render(source: Source) -> str:
    table = columns(source)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table)
    for row in zip(*table.values(), strict=True):
        writer.writerow([csv_value(cell(v)) for v in row])
    return out.getvalue()
