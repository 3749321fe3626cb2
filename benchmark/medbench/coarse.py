"""Fine-to-coarse scoring (Esteva et al. 2017): a run on a fine task, scored on its coarse view.

Esteva et al. trained on 757 fine disease classes and scored the coarse ones by summing the
probabilities of their fine classes. A binary task may declare itself the coarse view of a finer
multi-class task (``TaskSpec.coarse_of``): ``messidor2-referable`` is ``messidor2-grading`` with
P(referable) = P(grade 2) + P(grade 3) + P(grade 4). Both share one split, so the fine run's saved
val and test predictions give the coarse task's predictions case for case.

The result is a *derived* record on the coarse task, entry ``<entry>@<fine task>``, marked
``derived`` with the fine record's seal; it is scored exactly like a run of the coarse task
(operating points chosen on the summed val probabilities) and ranked on the coarse board beside
the runs trained on the binary labels. That answers Esteva's question for the task: does training
on the finer labels beat training on the coarse one? The fine board is untouched (nothing counts
twice). ``medbench verify`` re-derives it from the fine record's predictions. The runner derives
these records after every successful fine run; ``medbench coarse RECORD...`` derives them for
existing records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medbench.data.files import sha256_bytes, sha256_file, write_bytes_atomic
from medbench.data.prepare import prepare
from medbench.errors import MedbenchError, PredictionError, RecordError
from medbench.rescore import score_saved
from medbench.results import json_safe, now_utc, read_record, write_record
from medbench.saved import decode, encode, predictions_path
from medbench.tasks import TaskSpec, all_tasks, get_task

SPLITS = ("test", "val")
HOW = "fine-to-coarse"


def coarse_views(fine: TaskSpec) -> list[tuple[TaskSpec, tuple[int, ...]]]:
    """The tasks that are coarse views of ``fine``, with the fine classes of their positive class."""
    views = []
    for spec in all_tasks():
        if spec.coarse_of is None or spec.coarse_of[0] != fine.name:
            continue
        classes = tuple(int(c) for c in spec.coarse_of[1])
        problems = view_problems(spec, fine, classes)
        if problems:
            raise MedbenchError(f"task {spec.name}: coarse_of {fine.name}: {'; '.join(problems)}")
        views.append((spec, classes))
    return views


def view_problems(coarse: TaskSpec, fine: TaskSpec, classes: tuple[int, ...]) -> list[str]:
    problems = []
    if coarse.kind != "binary" or fine.kind != "multiclass":
        problems.append("a coarse view is a binary task of a multi-class one")
    if coarse.split_sha256 != fine.split_sha256:
        problems.append("the two tasks must share one split file (split hashes differ)")
    if not classes or len(set(classes)) != len(classes):
        problems.append(f"the positive classes {classes} must be distinct and not empty")
    if any(c < 0 or c >= len(fine.classes) for c in classes):
        problems.append(f"the positive classes {classes} must index {fine.name}'s classes")
    return problems


def entry_name(entry: str, fine_task: str) -> str:
    return f"{entry}@{fine_task}"


def _fine_predictions(path: Path, record: dict[str, Any]) -> dict[str, tuple[Any, np.ndarray]]:
    saved = record.get("predictions") or {}
    name = saved.get("file")
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise MedbenchError(f"{path} names no saved predictions (made before medbench saved them)")
    file = path.parent / name
    if not file.is_file() or sha256_file(file) != saved.get("sha256"):
        raise RecordError(f"{file} is missing or not the file {path.name} names (SHA-256 differs)")
    splits = decode(file)
    if any(s not in splits for s in SPLITS):
        raise RecordError(f"{file} lacks val or test predictions")
    return splits


def coarse_predictions(splits, classes: tuple[int, ...]) -> dict[str, tuple[Any, np.ndarray]]:
    """P(positive) per case: the sum of the positive classes' probabilities (clipped to [0, 1])."""
    out = {}
    for split in SPLITS:
        ids, values = splits[split]
        probs = np.asarray(values, np.float64)
        out[split] = (ids, np.clip(probs[:, list(classes)].sum(axis=1), 0.0, 1.0))
    return out


def derive(fine_path: str | Path, results_dir: str | Path | None = None) -> list[Path]:
    """Write the derived record of ``fine_path`` on each coarse view of its task; their paths."""
    fine_path = Path(fine_path)
    record = read_record(fine_path)
    if record["status"] != "ok":
        raise MedbenchError(f"{fine_path} is a failed run: there is nothing to score")
    if record.get("derived"):
        raise MedbenchError(f"{fine_path} is itself derived from {record['derived']['fine_task']}")
    if record.get("ensemble"):
        raise MedbenchError(
            f"{fine_path} is an ensemble: score its members on the coarse task, then ensemble them there"
        )
    fine = get_task(record["task"]["name"])
    if record["task"].get("version") != fine.version:
        raise MedbenchError(
            f"{fine_path} is of {fine.name} version {record['task'].get('version')}"
        )
    views = coarse_views(fine)
    if not views:
        raise MedbenchError(f"no task is a coarse view of {fine.name}")
    splits = _fine_predictions(fine_path, record)
    results = Path(results_dir) if results_dir is not None else fine_path.parent.parent
    written = []
    for coarse, classes in views:
        preds = coarse_predictions(splits, classes)
        prepared = prepare(coarse)
        try:
            fields = score_saved(coarse, prepared, preds)
        except PredictionError as exc:
            raise MedbenchError(
                f"{fine_path}'s predictions do not fit {coarse.name}'s cases: {exc}"
            ) from None
        name = entry_name(record["submission"]["name"], fine.name)
        target = results / coarse.name / f"{name}.seed{record['seed']}.json"
        new = _record(record, fine_path, target, coarse, prepared, classes, fields, fine)
        data = encode(preds)
        saved = predictions_path(target)
        write_bytes_atomic(saved, data)
        new["predictions"] = {"file": saved.name, "sha256": sha256_bytes(data)}
        write_record(target, new)
        written.append(target)
    return written


def _record(record, fine_path, target, coarse, prepared, classes, fields, fine) -> dict[str, Any]:
    rel = Path("..") / fine_path.parent.name / fine_path.name
    out = {k: v for k, v in record.items() if k not in ("record_sha256", "predictions", "gallery")}
    out.update(fields)
    out["task"] = {
        **record["task"],
        "name": coarse.name,
        "version": coarse.version,
        "kind": coarse.kind,
        "split_sha256": coarse.split_sha256,
        "data_sha256": prepared.data_sha256,
        "n_test": prepared.manifest["counts"]["test"],
    }
    out["submission"] = {
        **record["submission"],
        "name": entry_name(record["submission"]["name"], fine.name),
    }
    out["primary_metric"] = coarse.primary_metric
    out["higher_is_better"] = coarse.primary.higher_is_better
    out["derived"] = {
        "how": HOW,
        "fine_task": fine.name,
        "fine_record": rel.as_posix()
        if target.parent.parent == fine_path.parent.parent
        else str(fine_path),
        "fine_record_sha256": record["record_sha256"],
        "positive_classes": list(classes),
        "positive_class_names": [fine.classes[c] for c in classes],
        "date": now_utc(),
    }
    return json_safe(out)


def check_derived(path: Path, record: dict[str, Any]) -> str | None:
    """None when the derived record's predictions are its fine record's, summed; else why."""
    info = record.get("derived") or {}
    fine_path = (path.parent / str(info.get("fine_record"))).resolve()
    if not fine_path.is_file():
        return f"its fine record {fine_path} is missing"
    fine = read_record(fine_path)
    if fine["record_sha256"] != info.get("fine_record_sha256"):
        return f"its fine record {fine_path.name} is not the record it names (seal differs)"
    again = coarse_predictions(_fine_predictions(fine_path, fine), tuple(info["positive_classes"]))
    ours = decode(path.parent / record["predictions"]["file"])
    for split in SPLITS:
        a, b = dict(zip(*ours[split], strict=True)), dict(zip(*again[split], strict=True))
        if set(a) != set(b) or any(not np.array_equal(a[c], b[c]) for c in a):
            return f"its saved {split} predictions are not the fine run's, summed"
    return None
