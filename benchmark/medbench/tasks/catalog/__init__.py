"""Every task medbench defines, one module per family of tasks (a data set and its tasks).

A family module holds its tasks' specs (with their published anchors) and, as ``splits(data)``,
the recipe that made their committed split files from the raw data (``scripts/make_splits.py``
runs every family's recipe). Modules are discovered: a new family is a new module here.
Bump a task's ``version`` when its split, preparation or metrics change.
"""

from __future__ import annotations

import importlib
import pkgutil

FAMILIES = sorted(
    m.name
    for m in pkgutil.iter_modules(__path__)
    if m.name != "common" and not m.name.startswith("_")
)
for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")
