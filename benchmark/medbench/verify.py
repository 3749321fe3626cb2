"""``medbench verify RECORD...``: re-score a record's saved predictions against the local answers.

A record is sealed (its own SHA-256), but anyone who can write the results folder can also
re-seal it. What cannot be forged without the test labels is a set of predictions that scores as
the record says: so ``verify`` reads the predictions saved beside the record (checking the hash the
record names), validates them as a run does, scores them against this machine's prepared answers
(verified from the bytes read) and compares every summary value, per-class value, operating point
and per-case score with the record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medbench.coarse import check_derived
from medbench.data.files import sha256_file
from medbench.data.prepare import prepare
from medbench.ensemble import check_members
from medbench.errors import MedbenchError, PredictionError, RecordError
from medbench.rescore import score_saved
from medbench.results import read_record, record_files
from medbench.saved import decode
from medbench.tasks import get_task

FIELDS = ("metrics", "per_class", "operating_points", "per_case")


@dataclass(frozen=True)
class Verification:
    path: Path
    status: str  # verified | differs | unverifiable | not-scored
    detail: str


def _normal(value: Any) -> Any:
    """A record field as JSON gives it back (tuples to lists, float keys to strings...)."""
    return json.loads(json.dumps(value, sort_keys=True, allow_nan=False))


def _differences(recorded: dict[str, Any], recomputed: dict[str, Any]) -> list[str]:
    found = []
    for field in FIELDS:
        a, b = _normal(recorded.get(field) or {}), _normal(recomputed[field])
        if a == b:
            continue
        keys = sorted(set(a) | set(b))
        changed = [k for k in keys if a.get(k) != b.get(k)]
        found.append(
            f"{field}: {', '.join(map(str, changed[:5]))}{' ...' if len(changed) > 5 else ''}"
        )
    return found


def verify_record(path: str | Path) -> Verification:
    """Re-score one record's saved predictions; see the module docstring."""
    path = Path(path)
    record = read_record(path)  # the seal, and the field types
    if record["status"] != "ok":
        return Verification(path, "not-scored", "a failed run: there is nothing to re-score")
    saved = record.get("predictions") or {}
    name = saved.get("file")
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        return Verification(
            path,
            "unverifiable",
            "the record names no saved predictions (made before medbench saved them)",
        )
    file = path.parent / name
    if not file.is_file():
        return Verification(path, "unverifiable", f"its saved predictions {file} are missing")
    if sha256_file(file) != saved.get("sha256"):
        return Verification(
            path, "differs", f"{file} is not the file the record names (SHA-256 differs)"
        )
    spec = get_task(record["task"]["name"])
    if spec.version != record["task"].get("version"):
        return Verification(
            path,
            "unverifiable",
            f"made with {spec.name} version {record['task'].get('version')}; this medbench has {spec.version}",
        )
    prepared = prepare(spec)
    prepared.verify(full=True)
    if prepared.data_sha256 != record["task"].get("data_sha256"):
        return Verification(
            path,
            "unverifiable",
            f"the local data of {spec.name} differs from the record's (data hash "
            f"{prepared.data_sha256[:12]}, recorded {str(record['task'].get('data_sha256'))[:12]})",
        )
    try:
        recomputed = score_saved(spec, prepared, decode(file))
    except (KeyError, ValueError, PredictionError) as exc:
        return Verification(path, "differs", f"its saved predictions do not validate: {exc}")
    changed = _differences(record, recomputed)
    if changed:
        return Verification(path, "differs", "re-scored, it differs in " + "; ".join(changed))
    n = len(record["per_case"].get("case_id") or [])
    if record.get("derived"):
        why = check_derived(path, record)
        if why is not None:
            return Verification(path, "differs", f"a fine-to-coarse record, but {why}")
        return Verification(
            path,
            "verified",
            f"{n} test cases re-scored, and the predictions re-derived from its fine run "
            f"({record['derived']['fine_task']}): every value is the record's",
        )
    if record.get("ensemble"):
        why = check_members(path, record)
        if why is not None:
            return Verification(path, "differs", f"an ensemble record, but {why}")
        members = len(record["ensemble"]["members"])
        return Verification(
            path,
            "verified",
            f"{n} test cases re-scored, and the predictions re-derived from its {members} members: "
            "every value is the record's",
        )
    return Verification(path, "verified", f"{n} test cases re-scored: every value is the record's")


def verify_records(paths: list[Path]) -> list[Verification]:
    """Each record (or each record in a folder) verified; an unreadable one is reported too."""
    out = []
    for f in record_files(paths):
        try:
            out.append(verify_record(f))
        except RecordError as exc:  # unreadable, edited after sealing, wrong field types
            out.append(Verification(f, "differs", str(exc)))
        except MedbenchError as exc:  # no local data to score against, for one
            out.append(Verification(f, "unverifiable", f"{type(exc).__name__}: {exc}"))
    return out
