"""Load a submission folder: validate ``submission.toml`` and import its entry point in isolation.

Each folder is imported as its own package (``medbench_submissions.<name>_<hash>``), so two
submissions that both have a ``model.py`` never clash. Inside a submission, import sibling files
relatively (``from .layers import Block``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medbench.errors import SubmissionError, UnknownNameError
from medbench.submission.api import Submission
from medbench.submission.choices import check_loss
from medbench.submission.heads import check_heads
from medbench.submission.snapshot import content_hash  # noqa: F401 (re-exported: one definition)
from medbench.submission.tta import check_mode

MANIFEST = "submission.toml"
_PACKAGE = "medbench_submissions"
# Keys of [train] that medbench's own trainer reads, with their types. Other keys pass through.
TRAIN_TYPES: dict[str, tuple[type, ...]] = {
    "epochs": (int,),
    "batch_size": (int,),
    "lr": (float, int),
    "weight_decay": (float, int),
    "num_workers": (int,),
    "image_size": (int,),
    "backbone": (str,),
    "pretrained": (bool,),
    "amp": (bool,),
    "patience": (int,),
    "val_every": (int,),
    "base_width": (int,),
    "max_minutes": (float, int),
    "aug": (str,),
    "backbone_lr": (float, int),
    "trainable_stages": (int,),
    "tta": (str,),
    "heads": (str,),
    "loss": (str,),
    "tile": (int,),
    "tile_overlap": (int,),
}
# Keys whose value must also be one of a few: checked here, before a run is staged.
_TRAIN_VALUE_CHECKS = {"tta": check_mode, "heads": check_heads, "loss": check_loss}


@dataclass(frozen=True)
class Manifest:
    name: str
    summary: str
    entry: str
    tasks: tuple[str, ...]
    train: dict[str, Any] = field(default_factory=dict)
    path: Path = Path(".")

    def train_for(self, task: str) -> dict[str, Any]:
        """The ``[train]`` table with ``[train.<task>]`` overrides applied."""
        base = {k: v for k, v in self.train.items() if not isinstance(v, dict)}
        base.update(self.train.get(task, {}))
        return base


def _type_name(types: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    return " or ".join(names.get(t, t.__name__) for t in types)


MAX_NAME = 100  # a submission's name is part of file names: <name>.seed<k>.predictions.npz


def _plain(value: Any) -> bool:
    """A value JSON can hold as it is (records carry the [train] table): no TOML dates/times."""
    if isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    return False


def _check_value(where: str, key: str, value: Any) -> None:
    if not _plain(value):
        raise SubmissionError(
            f"{where}: {key} = {value!r} is a TOML date or time; [train] values must be strings, "
            "numbers, booleans, or lists/tables of them (quote it to pass it as a string)"
        )


def _check_train(table: dict[str, Any], where: str, tasks: tuple[str, ...], path: Path) -> None:
    for key, value in table.items():
        if isinstance(value, dict):
            if where != "train":
                raise SubmissionError(f"{path}: [{where}.{key}] nests too deep")
            if key not in tasks:
                raise SubmissionError(
                    f"{path}: [train.{key}] overrides a task the submission does not enter "
                    f"(tasks = {list(tasks)})"
                )
            _check_train(value, f"train.{key}", tasks, path)
            continue
        _check_value(f"{path}: [{where}]", key, value)
        expected = TRAIN_TYPES.get(key)
        # bool is an int in Python; `epochs = true` must still be refused.
        if expected and (
            not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected)
        ):
            raise SubmissionError(
                f"{path}: [{where}] {key} must be {_type_name(expected)}; got {value!r} "
                f"({type(value).__name__})"
            )
        if key in _TRAIN_VALUE_CHECKS:
            _TRAIN_VALUE_CHECKS[key](value, f"{path}: [{where}]")


def check_train_table(table: dict[str, Any], where: str) -> None:
    """Type-check flat ``[train]`` overrides (e.g. from ``medbench run --set``)."""
    for key, value in table.items():
        _check_value(where, key, value)
        expected = TRAIN_TYPES.get(key)
        if expected and (
            not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected)
        ):
            raise SubmissionError(
                f"{where}: {key} must be {_type_name(expected)}; got {value!r} ({type(value).__name__})"
            )
        if key in _TRAIN_VALUE_CHECKS:
            _TRAIN_VALUE_CHECKS[key](value, f"{where}:")


def read_manifest(folder: str | Path, *, check_task_names: bool = True) -> Manifest:
    """Parse and validate ``folder/submission.toml``; every problem is a SubmissionError.

    ``check_task_names=False``: the names in ``tasks`` are not looked up in the catalogue (the
    sandboxed child reads a manifest the parent has checked, and importing the catalogue would
    cost it about a second)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise SubmissionError(f"submission folder {folder} does not exist")
    if not path.is_file():
        raise SubmissionError(f"{folder} is not a submission: it has no {MANIFEST}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:  # unreadable (permissions), or not a regular file
        raise SubmissionError(f"cannot read {path}: {exc.strerror or exc}") from None
    section = data.get("submission")
    if not isinstance(section, dict):
        raise SubmissionError(f"{path} needs a [submission] table")
    missing = [k for k in ("name", "entry", "tasks") if k not in section]
    if missing:
        raise SubmissionError(f"{path}: [submission] lacks required key(s) {missing}")
    for key in ("name", "entry", "summary"):
        if key in section and not isinstance(section[key], str):
            raise SubmissionError(
                f"{path}: [submission] {key} must be a string; got {section[key]!r}"
            )
    name = section["name"]
    if len(name) > MAX_NAME:
        raise SubmissionError(
            f"{path}: name is {len(name)} characters long; at most {MAX_NAME} (it is part of file names)"
        )
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise SubmissionError(f"{path}: name {name!r} may hold only letters, digits, '-', '_', '.'")
    if name.startswith("."):  # its record would be a hidden file, skipped by the leaderboard
        raise SubmissionError(f"{path}: name {name!r} must not start with '.'")
    entry = section["entry"]
    module, _, attribute = entry.partition(":")
    # Python names only: a path ("../x") or a call ("Entry()") would reach outside the folder
    # or fail late, at import time in the child.
    if (
        entry.count(":") != 1
        or not all(part.isidentifier() for part in module.split("."))
        or not attribute.isidentifier()
    ):
        raise SubmissionError(
            f"{path}: entry must look like 'module:attribute' (Python names, e.g. 'model:Entry'); "
            f"got {entry!r}"
        )
    tasks = section["tasks"]
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
        raise SubmissionError(
            f"{path}: tasks must be a non-empty list of task names; got {tasks!r}"
        )
    if check_task_names:
        from medbench.tasks import TASKS

        for task in tasks:
            if task not in TASKS:
                raise SubmissionError(f"{path}: {UnknownNameError(TASKS.unknown_message(task))}")
    train = data.get("train", {})
    if not isinstance(train, dict):
        raise SubmissionError(f"{path}: [train] must be a table")
    for task in tasks:  # [train.<task>] overrides are merged as a table by Manifest.train_for
        if task in train and not isinstance(train[task], dict):
            raise SubmissionError(
                f"{path}: [train] {task} must be a table of overrides ([train.{task}]); "
                f"got {train[task]!r}"
            )
    _check_train(train, "train", tuple(tasks), path)
    unknown = sorted(set(data) - {"submission", "train"})
    if unknown:
        raise SubmissionError(
            f"{path}: unknown top-level table(s) {unknown}; allowed: [submission], [train]"
        )
    return Manifest(name, section.get("summary", ""), entry, tuple(tasks), train, folder.resolve())


def _package_for(folder: Path, name: str) -> str:
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:10]
    safe = "".join(c if c.isalnum() else "_" for c in name)
    package = f"{_PACKAGE}.{safe}_{digest}"
    if _PACKAGE not in sys.modules:
        root = importlib.util.module_from_spec(
            importlib.machinery.ModuleSpec(_PACKAGE, None, is_package=True)
        )
        root.__path__ = []  # type: ignore[attr-defined]
        sys.modules[_PACKAGE] = root
    if package not in sys.modules:
        spec = importlib.machinery.ModuleSpec(package, None, is_package=True)
        spec.submodule_search_locations = [str(folder.resolve())]
        module = importlib.util.module_from_spec(spec)
        module.__path__ = [str(folder.resolve())]  # type: ignore[attr-defined]
        sys.modules[package] = module
    return package


def load_entry(manifest: Manifest) -> Submission:
    """Import the entry point and return a Submission instance."""
    module_name, attribute = manifest.entry.split(":")
    package = _package_for(manifest.path, manifest.name)
    if (
        not (manifest.path / f"{module_name.replace('.', '/')}.py").is_file()
        and not (manifest.path / module_name.replace(".", "/") / "__init__.py").is_file()
    ):
        raise SubmissionError(
            f"{manifest.path / MANIFEST}: entry module {module_name!r} not found "
            f"(expected {module_name.replace('.', '/')}.py in {manifest.path})"
        )
    try:
        module = importlib.import_module(f"{package}.{module_name}")
    except SubmissionError:
        raise
    except Exception as exc:
        raise SubmissionError(
            f"importing {module_name}.py of submission {manifest.name!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not hasattr(module, attribute):
        raise SubmissionError(
            f"{manifest.path / MANIFEST}: entry {manifest.entry!r}: {module_name}.py has no "
            f"attribute {attribute!r}"
        )
    target = getattr(module, attribute)
    try:
        obj = target() if callable(target) else target
    except Exception as exc:
        raise SubmissionError(
            f"creating the submission {manifest.entry!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(obj, Submission):
        raise SubmissionError(
            f"entry {manifest.entry!r} must be a medbench.Submission subclass or a factory "
            f"returning one; got {type(obj).__name__}"
        )
    return obj


def load_submission(folder: str | Path) -> tuple[Manifest, Submission]:
    manifest = read_manifest(folder)
    return manifest, load_entry(manifest)
