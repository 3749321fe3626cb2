"""Ready stamps: ``medbench data prepare T`` on a ready task answers without importing the stack.

A successful ``data prepare`` leaves ``MEDBENCH_HOME/ready/<task>.json``: the line it printed,
where the cache's manifest is, and a key over everything that decides whether the cache is
still the one to use: the source of medbench's data and task code (readers, catalogue, split
recipes, committed split files) and medbench's version, the manifest's bytes, and the stat of
every file it lists. A later ``data prepare T`` recomputes the key with the standard library
(about 20 ms instead of a second of imports); any difference, or any doubt, falls back to the
full path. A stamp only ever saves printing work: runs load and verify the cache themselves, so
a forged stamp can do no more than print a wrong "ready".
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

from medbench import __version__
from medbench.data.files import stat_stamp, write_json_atomic
from medbench.home import cache_file, medbench_home
from medbench.keys import key_path

PACKAGE = Path(__file__).resolve().parents[1]
CODE = ("data", "tasks")  # the parts of the package that decide what a prepared cache holds


@cache
def _code_key() -> str:
    digest = hashlib.sha256(__version__.encode())
    for part in CODE:
        for path in sorted((PACKAGE / part).rglob("*")):
            if path.suffix in (".py", ".csv") and "__pycache__" not in path.parts:
                digest.update(b"\0" + path.relative_to(PACKAGE).as_posix().encode() + b"\0")
                digest.update(path.read_bytes())
    return digest.hexdigest()


def _stamp(name: str) -> Path:
    return medbench_home() / "ready" / f"{name}.json"


def _cache_key(manifest_path: Path) -> str:
    """The code key, the manifest's bytes and the stat of every array file it lists and of the
    installation key (which seals the manifest)."""
    data = manifest_path.read_bytes()
    arrays = json.loads(data)["arrays"]
    folder = manifest_path.parent
    digest = hashlib.sha256(_code_key().encode() + b"\0" + data)
    files = [("key", key_path())] + [(rel, cache_file(folder, rel)) for rel in sorted(arrays)]
    for rel, path in files:
        digest.update(f"\0{rel}:{stat_stamp(path)}".encode())
    return digest.hexdigest()


def record_ready(name: str, manifest_path: Path, line: str) -> None:
    """Leave the stamp of a task just found or made ready (best effort: a stamp is optional)."""
    try:
        body = {"manifest": str(manifest_path), "key": _cache_key(manifest_path), "line": line}
        write_json_atomic(_stamp(name), body)
    except (OSError, ValueError, KeyError, TypeError):
        pass


def ready_lines(names: list[str]) -> list[str] | None:
    """The lines ``data prepare`` printed for these tasks, if every one is still ready; else
    None (the caller takes the full path)."""
    lines = []
    for name in names:
        try:
            stamp = json.loads(_stamp(name).read_text())
            if stamp["key"] != _cache_key(Path(stamp["manifest"])):
                return None
            lines.append(str(stamp["line"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return lines
