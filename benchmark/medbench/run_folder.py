"""A run's folder (``MEDBENCH_HOME/runs/<task>/<name>-<hash>/seed<k>/``) and the child's view of it.

::

    submission/   the snapshot that runs (read-only)        run.json    what run this folder holds
    input/<split>/cases.csv (opaque ids), test images       job.json    the child's instructions
    work/         the child's scratch: checkpoints, HOME    child.log   its output, capped
    output/       predictions, child-result.json

In the sandbox the child sees these under ``/medbench`` and the train/val arrays of the prepared
cache at ``/medbench/input/<split>/``; unsandboxed it gets the host paths.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from medbench.blinding import Blinding
from medbench.data.arrays import Ragged, load_array, save_array
from medbench.data.files import write_json_atomic
from medbench.data.prepare import PreparedTask
from medbench.home import medbench_home
from medbench.sandbox import ROOT, child_env
from medbench.submission.snapshot import Snapshot
from medbench.tasks.spec import SPLITS

if TYPE_CHECKING:  # the child imports this module, and must not import the task catalogue
    from medbench.data.subsets import TrainSubset


def run_folder(name: str, digest: str, task: str, seed: int) -> Path:
    return medbench_home() / "runs" / task / f"{name}-{digest[:12]}" / f"seed{seed}"


@dataclass
class Layout:
    """The child's view of the run's files: inside paths in the sandbox, host paths without."""

    sandboxed: bool
    read_only: dict[str, Path] = field(default_factory=dict)
    writable: dict[str, Path] = field(default_factory=dict)

    def ro(self, host: Path, inside: str) -> str:
        if not self.sandboxed:
            return str(host)
        self.read_only[inside] = host
        return inside

    def rw(self, host: Path, inside: str) -> str:
        if not self.sandboxed:
            return str(host)
        self.writable[inside] = host
        return inside


@dataclass(frozen=True)
class Ids:
    """Per split: the real case ids and the opaque ones given for them (same order)."""

    real: dict[str, tuple[str, ...]]
    opaque: dict[str, tuple[str, ...]]


def remove_tree(path: Path) -> None:
    """rmtree that also removes the read-only files of a snapshot."""

    def writable_then_retry(func, p, _exc):
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o600)
            func(p)

    if path.exists() or path.is_symlink():
        shutil.rmtree(path, onerror=writable_then_retry)


def staging_folder() -> Path:
    """A new folder for a snapshot before its run folder is known (its name is its hash)."""
    staging = medbench_home() / "runs" / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # folders of runners that are gone (killed before cleanup)
        for entry in staging.iterdir():
            pid = entry.name.split("-")[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                remove_tree(entry)
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=staging))


def prepare_folder(folder: Path, snap: Snapshot, ident: dict[str, Any], *, resume: bool) -> str:
    """Make the run folder: the snapshot in place, no stale inputs, outputs or child files.

    With ``resume``, the work folder (checkpoints) is kept only when the previous run there was
    this very run (``ident``); returns a note when it was not.
    """
    note = ""
    stamp = folder / "run.json"
    if resume and folder.exists():
        try:
            previous = json.loads(stamp.read_text())
        except (OSError, ValueError):
            previous = None
        if previous != ident:
            changed = (
                sorted(k for k in ident if previous.get(k) != ident[k])
                if isinstance(previous, dict)
                else ["no record of the previous run"]
            )
            note = f"not resuming: the run's {', '.join(changed)} changed; starting over"
            remove_tree(folder / "work")
    elif folder.exists():
        remove_tree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("input", "output", "submission", "job.json"):
        path = folder / sub
        if path.is_dir():
            remove_tree(path)
        else:
            path.unlink(missing_ok=True)
    os.replace(snap.path, folder / "submission")
    for sub in ("input", "output", "work"):
        (folder / sub).mkdir(exist_ok=True)
    write_json_atomic(stamp, ident)
    if note:
        with open(folder / "child.log", "a") as log:
            log.write(f"[medbench: {note}]\n")
    return note


def write_inputs(
    prepared: PreparedTask,
    folder: Path,
    blinding: Blinding,
    layout: Layout,
    *,
    train_subset: TrainSubset | None = None,
) -> tuple[dict[str, Any], Ids]:
    """Each split's case table (opaque ids) and array files as the child will see them.

    Train and val arrays are the prepared files themselves (read-only in the sandbox); the test
    images are copied in the shuffled order, their labels are not there at all. With a
    ``train_subset``, only its training cases (images and targets) are copied in.
    """
    inputs: dict[str, Any] = {}
    real: dict[str, tuple[str, ...]] = {}
    opaque: dict[str, tuple[str, ...]] = {}
    for split in SPLITS:
        cases = pd.read_csv(prepared.path / split / "cases.csv", dtype=str, keep_default_na=False)
        if split == "train" and train_subset is not None:
            cases = cases.iloc[train_subset.indices]
        real[split] = tuple(cases["case_id"])
        opaque[split] = blinding.ids(split, real[split])
        out = folder / split
        out.mkdir(parents=True, exist_ok=True)
        inside = f"{ROOT}/input/{split}"
        if split == "test":
            order = blinding.order(split, len(real[split]))
            images = load_array(prepared.path / split, "images")
            shuffled = (
                Ragged.from_arrays([np.asarray(images[i]) for i in order])
                if isinstance(images, Ragged)
                else np.ascontiguousarray(images[order])
            )
            image_files = save_array(out, "images", shuffled)
            given = [opaque[split][i] for i in order]
            targets = []
        elif split == "train" and train_subset is not None:
            image_files, targets = _subset_arrays(prepared.path / split, out, train_subset.indices)
            given = list(opaque[split])
        else:
            image_files = prepared.files(split, "images")
            given = list(opaque[split])
            targets = prepared.files(split, "targets")
        pd.DataFrame({"case_id": given}).to_csv(out / "cases.csv", index=False, lineterminator="\n")
        inputs[split] = {
            "cases": layout.ro(out / "cases.csv", f"{inside}/cases.csv"),
            "images": [layout.ro(f, f"{inside}/{f.name}") for f in image_files],
            "targets": [layout.ro(f, f"{inside}/{f.name}") for f in targets],
        }
    return inputs, Ids(real, opaque)


def _subset_arrays(source: Path, out: Path, indices: np.ndarray) -> tuple[list[Path], list[Path]]:
    """The images and targets of the chosen training cases, copied into the run's input folder."""
    files = []
    for name in ("images", "targets"):
        full = load_array(source, name)
        part = (
            Ragged.from_arrays([np.asarray(full[int(i)]) for i in indices])
            if isinstance(full, Ragged)
            else np.ascontiguousarray(full[indices])
        )
        files.append(save_array(out, name, part))
    return files[0], files[1]


def environment_for(
    *, threads: int, seed: int, workdir: str, sandboxed: bool, extra: dict[str, str]
) -> dict[str, str]:
    """The child's environment: the sandbox's few variables (or, unsandboxed, the parent's), the
    seed and the thread count (float sums on a CPU depend on it)."""
    env = child_env(workdir) if sandboxed else dict(os.environ)
    env.update(extra)
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": str(seed),
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "MEDBENCH_THREADS": str(threads),
        }
    )
    return env
