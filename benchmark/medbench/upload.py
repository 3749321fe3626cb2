"""``medbench score``: a predictions file scored the way Kaggle scores an upload.

The file is read with the bounds a run's predictions get, validated against the split's case ids,
and scored by the runner's own entry point (:func:`medbench.scoring.score_run`) against the
prepared labels, verified first as for a run.
"""

from __future__ import annotations

from pathlib import Path

from medbench.data.arrays import Ragged
from medbench.data.prepare import prepare
from medbench.errors import MedbenchError
from medbench.predictions import read_predictions, validate
from medbench.scoring import ScoreReport, score_run
from medbench.tasks import get_task


def score_file(
    task: str, predictions: Path, *, split: str = "test", val_predictions: Path | None = None
) -> ScoreReport:
    """Score ``predictions`` on ``split`` (test or val); binary operating points are chosen on
    ``val_predictions`` when given."""
    spec = get_task(task)
    if split not in ("test", "val"):
        raise MedbenchError(f"--split must be test or val; got {split!r}")
    if val_predictions is not None and spec.kind != "binary":
        raise MedbenchError("--val-predictions is for binary tasks (operating points)")
    prepared = prepare(spec)
    prepared.verify()  # the labels scored against are the labels prepared, as in `medbench run`
    files = {split: predictions} | ({"val": val_predictions} if val_predictions else {})
    preds, truth = {}, {}
    for name, path in files.items():
        data = prepared.split(name)
        shapes = data.targets.shapes() if isinstance(data.targets, Ragged) else None
        found = read_predictions(path, spec, n_cases=len(data.case_ids), shapes=shapes)
        preds[name] = validate(spec, found, data.case_ids, shapes=shapes)
        truth[name] = data.targets
    cases = prepared.split(split, with_targets=False).cases
    return score_run(spec, preds, truth, cases, split=split)
