"""Where medbench keeps its per-user state (``MEDBENCH_HOME``): standard library only, so the
quick paths of the CLI can find it without importing numpy, pandas or the task catalogue."""

from __future__ import annotations

import os
from pathlib import Path

ANSWERS = "answers"


def medbench_home() -> Path:
    """The per-user folder for prepared caches and downloads (``MEDBENCH_HOME``)."""
    if "MEDBENCH_HOME" in os.environ:
        return Path(os.environ["MEDBENCH_HOME"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "medbench"


def prepared_folder(name: str, version: int) -> Path:
    """The prepared cache of version ``version`` of task ``name``."""
    return medbench_home() / "prepared" / f"{name}-v{version}"


def answers_folder(name: str, version: int) -> Path:
    """Where that cache's test labels live: outside the folder a submission's child reads."""
    return medbench_home() / ANSWERS / f"{name}-v{version}"


def cache_file(folder: Path, rel: str) -> Path:
    """Where the manifest entry ``rel`` of the prepared cache ``folder`` lives (``answers/...``
    in that cache's answers folder, outside the folder a child reads)."""
    head, _, rest = rel.partition("/")
    return medbench_home() / ANSWERS / folder.name / rest if head == ANSWERS else folder / rel
