"""``medbench ensemble NAME --task T A B ...``: a leaderboard row from the saved predictions of runs.

The members' saved val and test predictions (see :mod:`medbench.saved`) are combined case by
case, with weights (equal by default):

- binary and multi-class: the weighted mean of the probabilities (the ensemble of Lakhani &
  Sundaram 2017 and McKinney et al. 2020);
- multi-label masks: runs save their masks as scored (booleans), so the mean of the members' masks
  is a weighted vote, and a pixel is foreground where at least half of the weight says so (with
  two members that is their union; prefer an odd number);
- instance label maps: the foreground (label > 0) is voted the same way and the instances are
  re-derived as its 8-connected components (touching instances that a member had split merge).

The combination is scored exactly like a run (:func:`medbench.rescore.score_saved`, operating
points chosen on the combined val predictions) into a record marked ``ensemble``, which names
every member's record (its seal), content hash and weight, and holds the sum of their costs. Its
own predictions are saved beside it, so ``medbench verify`` re-scores it, and re-derives the
combination from the members' files.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from medbench.cost import summed
from medbench.data.files import sha256_bytes, sha256_file, write_bytes_atomic
from medbench.data.prepare import prepare
from medbench.errors import MedbenchError, PredictionError, RecordError
from medbench.rescore import score_saved
from medbench.results import environment, json_safe, now_utc, read_record, write_record
from medbench.saved import decode, encode, predictions_path
from medbench.tasks import TaskSpec, get_task

SPLITS = ("test", "val")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,79}$")
COST_KEYS = ("fit_s", "predict_s", "child_wall_s", "total_s")


def combination(kind: str) -> str:
    """How the members' predictions of a task kind are combined, in words (stored in the record)."""
    return {
        "binary": "weighted mean of the probabilities",
        "multiclass": "weighted mean of the class probabilities",
        "multilabel-segmentation": "weighted vote of the masks, foreground at >= half the weight",
        "instance-segmentation": (
            "weighted vote of the foreground, foreground at >= half the weight; instances are "
            "its 8-connected components"
        ),
    }[kind]


@dataclass(frozen=True)
class Member:
    entry: str
    path: Path
    record: dict[str, Any]
    weight: float


def resolve_members(
    spec: TaskSpec, names: list[str], results_dir: Path, seed: int, weights: list[float] | None
) -> list[Member]:
    """Each member as a verified record: an entry name (its ``seed`` run) or a record path."""
    if len(names) < 2:
        raise MedbenchError("an ensemble needs at least two members")
    if weights is not None and len(weights) != len(names):
        raise MedbenchError(f"--weights gives {len(weights)} weights for {len(names)} members")
    if weights is not None and (
        any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0
    ):
        raise MedbenchError(f"--weights must be finite, >= 0 and not all 0; got {weights}")
    members = []
    for i, name in enumerate(names):
        path = (
            Path(name)
            if name.endswith(".json")
            else results_dir / spec.name / f"{name}.seed{seed}.json"
        )
        if not path.is_file():
            raise MedbenchError(f"no record of member {name!r}: {path} does not exist")
        record = read_record(path)
        if record["status"] != "ok":
            raise MedbenchError(f"member {name!r} ({path}) is a failed run")
        members.append(
            Member(
                record["submission"]["name"],
                path,
                record,
                1.0 if weights is None else float(weights[i]),
            )
        )
    if len({m.path.resolve() for m in members}) != len(members):
        raise MedbenchError("a member is named twice")
    for m in members:
        task = m.record["task"]
        if task["name"] != spec.name:
            raise MedbenchError(
                f"member {m.entry!r} is a record of {task['name']}, not {spec.name}"
            )
        if task.get("version") != spec.version or task.get("split_sha256") != spec.split_sha256:
            raise MedbenchError(
                f"member {m.entry!r} was scored on another version or split of {spec.name}: "
                "re-run or `medbench rescore` it first"
            )
    folder = (results_dir / spec.name).resolve()
    for m in members:
        if m.path.resolve().parent != folder:
            raise MedbenchError(
                f"member {m.entry!r} ({m.path}) is not in {results_dir / spec.name}: an ensemble "
                "names its members beside it, so that `medbench verify` finds them"
            )
    hashes = {m.record["task"].get("data_sha256") for m in members}
    if len(hashes) != 1:
        raise MedbenchError(
            f"the members were scored on different prepared data of {spec.name} (data hashes differ)"
        )
    return members


def saved_predictions(member: Member) -> dict[str, tuple[tuple[str, ...], Any]]:
    saved = member.record.get("predictions") or {}
    name = saved.get("file")
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise MedbenchError(
            f"member {member.entry!r} has no saved predictions (a record made before medbench "
            "saved them): re-run it"
        )
    file = member.path.parent / name
    if not file.is_file():
        raise MedbenchError(f"the saved predictions of member {member.entry!r} are missing: {file}")
    if sha256_file(file) != saved.get("sha256"):
        raise RecordError(
            f"{file} is not the file the record of {member.entry!r} names (SHA-256 differs)"
        )
    splits = decode(file)
    missing = [s for s in SPLITS if s not in splits]
    if missing:
        raise RecordError(f"{file} holds no {' or '.join(missing)} predictions")
    return splits


def combine(kind: str, members: list[Any], weights: np.ndarray) -> Any:
    """The combination of one case's member predictions (see the module docstring)."""
    w = weights / weights.sum()
    if kind in ("binary", "multiclass"):
        stacked = np.stack([np.asarray(p, np.float64) for p in members])
        return np.tensordot(w, stacked, axes=1)
    if kind == "multilabel-segmentation":
        vote = np.tensordot(w, np.stack([np.asarray(p, np.float64) for p in members]), axes=1)
        return vote >= 0.5 - 1e-12
    if kind == "instance-segmentation":
        vote = np.tensordot(
            w, np.stack([np.asarray(p) > 0 for p in members]).astype(np.float64), axes=1
        )
        labels, _ = ndimage.label(vote >= 0.5 - 1e-12, structure=np.ones((3, 3), bool))
        return labels.astype(np.int32)
    raise MedbenchError(f"cannot ensemble a {kind} task")


def combined_predictions(
    spec: TaskSpec, members: list[Member]
) -> dict[str, tuple[tuple[str, ...], Any]]:
    """``{split: (case ids, combined predictions)}``, case ids in the first member's order."""
    saved = [saved_predictions(m) for m in members]
    weights = np.array([m.weight for m in members], np.float64)
    out = {}
    for split in SPLITS:
        ids = saved[0][split][0]
        tables = [dict(zip(*s[split], strict=True)) for s in saved]
        for m, table in zip(members, tables, strict=True):
            if set(table) != set(ids):
                raise MedbenchError(
                    f"member {m.entry!r} predicted other {split} cases than {members[0].entry!r}"
                )
        combined = [combine(spec.kind, [t[c] for t in tables], weights) for c in ids]
        if spec.kind == "binary":
            combined = np.asarray(combined, np.float64).reshape(-1)
        elif spec.kind == "multiclass":
            combined = np.stack(combined)
        elif spec.kind == "multilabel-segmentation":
            combined = np.stack(combined)
        out[split] = (ids, combined)
    return out


def content_digest(members: list[Member], how: str) -> str:
    """The ensemble's identity: its members (records, contents, weights) and the combination."""
    payload = [
        [m.entry, m.record["submission"].get("content_sha256"), m.record["record_sha256"], m.weight]
        for m in members
    ]
    return hashlib.sha256(json.dumps([payload, how], sort_keys=True).encode()).hexdigest()


def make_ensemble(
    name: str,
    task: str,
    member_names: list[str],
    *,
    results_dir: Path,
    seed: int = 0,
    weights: list[float] | None = None,
) -> Path:
    """Combine, score and write the ensemble's record (and saved predictions); return its path."""
    if not NAME.match(name) or name.endswith(".json"):
        raise MedbenchError(
            f"ensemble name {name!r}: use letters, digits, '.', '_', '+', '-' (at most 80)"
        )
    spec = get_task(task)
    results_dir = Path(results_dir)
    target = results_dir / spec.name / f"{name}.seed{seed}.json"
    if target.exists():
        old = read_record(target)
        if not old.get("ensemble"):
            raise MedbenchError(
                f"{target} is the record of a run, not of an ensemble: choose another name"
            )
    members = resolve_members(spec, member_names, results_dir, seed, weights)
    if any(m.path.resolve() == target.resolve() for m in members):
        raise MedbenchError(f"the ensemble {name!r} cannot be its own member")
    t0 = time.perf_counter()
    splits = combined_predictions(spec, members)
    prepared = prepare(spec)
    if prepared.data_sha256 != members[0].record["task"].get("data_sha256"):
        raise MedbenchError(
            f"the local data of {spec.name} differs from the members' (data hash "
            f"{prepared.data_sha256[:12]}): the ensemble cannot be scored here"
        )
    try:
        fields = score_saved(spec, prepared, splits)
    except PredictionError as exc:
        raise MedbenchError(f"the combined predictions do not validate: {exc}") from None
    score_s = time.perf_counter() - t0
    record = _record(spec, name, seed, members, fields, score_s)
    data = encode(splits)
    saved = predictions_path(target)
    write_bytes_atomic(saved, data)
    record["predictions"] = {"file": saved.name, "sha256": sha256_bytes(data)}
    write_record(target, record)
    return target


def _record(spec, name, seed, members, fields, score_s) -> dict[str, Any]:
    how = combination(spec.kind)
    first = members[0].record
    modes = [(m.record.get("isolation") or {}).get("mode") for m in members]
    costs = {
        k: round(sum(float((m.record.get("timings") or {}).get(k) or 0.0) for m in members), 3)
        for k in COST_KEYS
    }
    devices = sorted({str(m.record.get("device_name") or m.record.get("device")) for m in members})
    entries = ", ".join(m.entry for m in members)
    return json_safe(
        {
            "schema": first["schema"],
            "status": "ok",
            "error": None,
            "task": {k: first["task"].get(k) for k in first["task"]},
            "submission": {
                "name": name,
                "folder_name": None,
                "variant": None,
                "summary": f"ensemble of {entries} ({how})",
                "path": None,
                "content_sha256": content_digest(members, how),
                "files": None,
                "bytes": None,
            },
            "seed": seed,
            "device": "ensemble",
            "device_name": " + ".join(devices),
            # The ensemble ran no code of its own; it is as isolated as its least isolated member.
            "isolation": {
                "mode": "sandbox" if set(modes) == {"sandbox"} else "none",
                "members": modes,
            },
            "train": {
                "ensemble_of": [m.entry for m in members],
                "weights": [m.weight for m in members],
                "combine": how,
            },
            "primary_metric": spec.primary_metric,
            "higher_is_better": spec.primary.higher_is_better,
            "environment": environment(),
            **fields,
            "timings": {**costs, "score_s": round(score_s, 3)},
            # the members' counts and times summed; absent when a member's record has no cost
            **({"cost": cost} if (cost := summed([m.record.get("cost") for m in members])) else {}),
            "peak_gpu_memory_mb": None,
            "peak_memory_mb": None,
            "created": now_utc(),
            "notes": {},
            "ensemble": {
                "combine": how,
                "members": [
                    {
                        "entry": m.entry,
                        "record": m.path.name,
                        "record_sha256": m.record["record_sha256"],
                        "content_sha256": m.record["submission"].get("content_sha256"),
                        "seed": m.record["seed"],
                        "weight": m.weight,
                        "predictions_sha256": (m.record.get("predictions") or {}).get("sha256"),
                    }
                    for m in members
                ],
                "cost": "timings are the sums over the members (plus this scoring)",
            },
        }
    )


def check_members(path: Path, record: dict[str, Any]) -> str | None:
    """None when the ensemble record's saved predictions are its members' combination, else why.

    Each member must still be the record (seal) and saved predictions the ensemble names."""
    spec = get_task(record["task"]["name"])
    info = record.get("ensemble") or {}
    members = []
    for m in info.get("members") or []:
        member_path = path.parent / str(m.get("record"))
        if "/" in str(m.get("record")) or not member_path.is_file():
            return f"its member record {member_path} is missing"
        member = read_record(member_path)
        if member["record_sha256"] != m.get("record_sha256"):
            return f"its member {member_path.name} is not the record it names (seal differs)"
        members.append(
            Member(member["submission"]["name"], member_path, member, float(m["weight"]))
        )
    if len(members) < 2:
        return "it names fewer than two members"
    ours = decode(path.parent / record["predictions"]["file"])
    again = combined_predictions(spec, members)
    for split in SPLITS:
        a, b = dict(zip(*ours[split], strict=True)), dict(zip(*again[split], strict=True))
        if set(a) != set(b) or any(
            not np.array_equal(np.asarray(a[c]), np.asarray(b[c])) for c in a
        ):
            return f"its saved {split} predictions are not its members' combination"
    return None
