"""Prepared caches: a task's data converted once to its size and stored as memory-mappable arrays.

Layout of ``$MEDBENCH_HOME/prepared/<task>-v<version>/``::

    manifest.json            task, versions, source, SHA-256 of every raw file and array file
    <split>/images.npy       (n, H, W, C) uint8   (native sizes: images.data.npy + images.index.npy)
    <split>/targets.npy      (n,) int64 labels | (n, C, H, W) bool masks | ragged uint16 label maps
    <split>/cases.csv        case_id (+ group columns such as the source hospital)

and ``$MEDBENCH_HOME/answers/<task>-v<version>/targets.npy``: the test labels, kept out of the
prepared folder so that nothing a submission is handed (train/val memory maps) sits beside them.

The manifest is sealed with the installation key (:mod:`medbench.keys`), and the task's data hash
covers the manifest's content (raw file hashes, array hashes, counts, versions): an edited array
with an edited manifest is refused, never scored under the old data hash. The labels the parent
scores with (val and test) are read into memory and hashed from those very bytes, so what is
scored is what was verified (a file changed behind a memory map cannot slip through).

Preparation is atomic (written in a temporary folder, then renamed), so an interrupted prepare
leaves no half cache. Resizing: images by area averaging (``cv2.INTER_AREA``) when shrinking and
bilinear when enlarging; masks by area averaging then threshold at 0.5 (nearest when enlarging);
label maps of native-size tasks are never resized.
"""

from __future__ import annotations

import io
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medbench import __version__
from medbench.data.arrays import Ragged, load_array, save_array
from medbench.data.datasets import DATASETS, Located
from medbench.data.files import (
    atomic_dir,
    locked,
    remove_stale_temporaries,
    sha256_bytes,
    sha256_file,
    stat_stamp,
    write_json_atomic,
)
from medbench.data.sources import (
    Progress,
    absent_note,
    data_roots,
    find_local,
    locate,
    medbench_home,
)
from medbench.errors import ChecksumError, DataError, DataNotFoundError
from medbench.home import ANSWERS, answers_folder, cache_file, prepared_folder
from medbench.keys import mac
from medbench.tasks import TaskSpec, get_task
from medbench.tasks.spec import SPLITS
from medbench.tasks.splits import load_split

PREP_VERSION = 4  # bump when this module changes what it writes


@dataclass(frozen=True)
class SplitData:
    """One split of a prepared task. ``targets`` is None for a test set handed to a submission."""

    name: str
    case_ids: tuple[str, ...]
    images: np.ndarray | Ragged
    targets: np.ndarray | Ragged | None
    cases: pd.DataFrame

    def __len__(self) -> int:
        return len(self.case_ids)


@dataclass(frozen=True)
class PreparedTask:
    spec: TaskSpec
    path: Path
    manifest: dict

    def split(self, name: str, *, with_targets: bool = True) -> SplitData:
        """One split; val and test targets are read verified into memory (see the module doc)."""
        folder = self.path / name
        cases = pd.read_csv(folder / "cases.csv", dtype=str, keep_default_na=False)
        images = load_array(folder, "images")
        targets = None
        if with_targets:
            targets = load_array(folder, "targets") if name == "train" else self.targets(name)
        return SplitData(name, tuple(cases["case_id"]), images, targets, cases)

    def file(self, rel: str) -> Path:
        """Where the manifest's array entry ``rel`` lives (``answers/...`` outside the folder)."""
        return cache_file(self.path, rel)

    def files(self, split: str, name: str) -> list[Path]:
        """The array files of ``name`` (images, targets) of ``split``, as listed in the manifest."""
        prefix = f"{ANSWERS}/" if (split, name) == ("test", "targets") else f"{split}/"
        wanted = [f"{prefix}{name}.npy", f"{prefix}{name}.data.npy", f"{prefix}{name}.index.npy"]
        return [self.file(rel) for rel in wanted if rel in self.manifest["arrays"]]

    def targets(self, split: str) -> np.ndarray | Ragged:
        """``split``'s targets read into memory, each file hashed from the bytes read."""
        arrays = []
        for path in self.files(split, "targets"):
            rel = next(r for r in self.manifest["arrays"] if self.file(r) == path)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise ChecksumError(
                    f"prepared file {path} cannot be read ({exc.strerror or exc}); run "
                    f"`medbench data prepare {self.spec.name} --force`"
                ) from None
            _check_hash(path, sha256_bytes(data), self.manifest["arrays"][rel], self.spec)
            arrays.append(np.load(io.BytesIO(data), allow_pickle=False))
        if not arrays:
            raise ChecksumError(
                f"the prepared cache of {self.spec.name!r} lists no {split} targets"
            )
        return arrays[0] if len(arrays) == 1 else Ragged(arrays[0], arrays[1])

    @property
    def data_sha256(self) -> str:
        return self.manifest["data_sha256"]

    @property
    def source(self) -> dict:
        return self.manifest["source"]

    def verify(self, *, full: bool = False) -> None:
        """Check every array file against the manifest; a changed file raises ChecksumError.

        A full re-hash costs seconds on the larger tasks, so after one the files' stat stamps
        (size, inode, modification and change times) are kept, sealed, in ``VERIFIED``; while
        every stamp still matches, no file was rewritten or replaced since it was hashed (the
        change time cannot be set back from user space), and the re-hash is skipped. Submission
        code sees these folders read-only in the sandbox, so only another process of the user
        could change them, and that changes a stamp. ``full`` re-hashes regardless.
        """
        stamps = {}
        for rel in self.manifest["arrays"]:
            path = self.file(rel)
            try:
                stamps[rel] = stat_stamp(path)
            except OSError:
                raise ChecksumError(
                    f"prepared file {path} is missing; run `medbench data prepare {self.spec.name} --force`"
                ) from None
        if not full and self._verified_stamps() == stamps:
            return
        for rel, expected in self.manifest["arrays"].items():
            _check_hash(self.file(rel), sha256_file(self.file(rel)), expected, self.spec)
        body = {"seal": self.manifest["seal"], "stamps": stamps}
        try:
            write_json_atomic(self.path / VERIFIED, {**body, "mac": _stamps_mac(body)})
        except OSError:
            pass  # a read-only cache is verified in full every time

    def _verified_stamps(self) -> dict | None:
        try:
            saved = json.loads((self.path / VERIFIED).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict) or saved.get("seal") != self.manifest["seal"]:
            return None
        body = {"seal": saved.get("seal"), "stamps": saved.get("stamps")}
        return saved["stamps"] if saved.get("mac") == _stamps_mac(body) else None


VERIFIED = "verified.json"  # stat stamps of the array files as last fully hashed


def _stamps_mac(body: dict) -> str:
    return mac("prepared-stamps", json.dumps(body, sort_keys=True, separators=(",", ":"))).hex()


def _check_hash(path: Path, found: str, expected: str, spec: TaskSpec) -> None:
    if found != expected:
        raise ChecksumError(
            f"prepared file {path} changed after preparation (expected SHA-256 "
            f"{expected}, found {found}); run `medbench data prepare {spec.name} --force`"
        )


def _manifest_seal(manifest: dict) -> str:
    body = {k: v for k, v in manifest.items() if k != "seal"}
    return mac("manifest", json.dumps(body, sort_keys=True, separators=(",", ":"))).hex()


def data_hash(manifest: dict) -> str:
    """The data hash of a prepared task: what its manifest says the data is (raw files, every
    array written, counts, split), so that no array can change under an unchanged data hash.
    Versions are left out: a new task version that prepares the same arrays (a metric added)
    has the same data, and its records can be rescored."""
    keys = ("task", "split_sha256", "counts", "raw_files", "arrays")
    body = {k: manifest.get(k) for k in keys}
    return sha256_bytes(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def prepared_dir(spec: TaskSpec) -> Path:
    return prepared_folder(spec.name, spec.version)


def answers_dir(spec: TaskSpec) -> Path:
    """Where the test labels live: outside the prepared folder a submission's child reads from."""
    return answers_folder(spec.name, spec.version)


def load_prepared(spec: TaskSpec | str) -> PreparedTask | None:
    """The task's prepared cache if it is complete and current, else None."""
    spec = get_task(spec) if isinstance(spec, str) else spec
    path = prepared_dir(spec)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if (
        not isinstance(manifest, dict)
        or manifest.get("prep_version") != PREP_VERSION
        or manifest.get("task_version") != spec.version
        or manifest.get("split_sha256") != spec.split_sha256
    ):
        return None
    if manifest.get("seal") != _manifest_seal(manifest) or manifest.get("data_sha256") != data_hash(
        manifest
    ):
        raise ChecksumError(
            f"the manifest of the prepared cache {manifest_path} was changed after preparation "
            f"(its seal does not match); run `medbench data prepare {spec.name} --force`"
        )
    return PreparedTask(spec, path, manifest)


# --- resizing ------------------------------------------------------------------------------------


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(H, W, C)`` uint8 -> ``(size[0], size[1], C)``: area when shrinking, bilinear when enlarging."""
    import cv2  # only a prepare that resizes needs OpenCV (0.2 s to import)

    h, w = image.shape[:2]
    if (h, w) == tuple(size):
        return image
    shrink = size[0] <= h and size[1] <= w
    out = cv2.resize(
        image, (size[1], size[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )
    return out.reshape(size[0], size[1], image.shape[2])


def resize_masks(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(C, H, W)`` bool -> ``(C, *size)`` bool: area fraction >= 0.5 when shrinking, else nearest."""
    import cv2

    c, h, w = masks.shape
    if (h, w) == tuple(size):
        return masks.astype(bool)
    shrink = size[0] <= h and size[1] <= w
    interp = cv2.INTER_AREA if shrink else cv2.INTER_NEAREST
    stack = masks.transpose(1, 2, 0).astype(np.float32)
    out = cv2.resize(stack, (size[1], size[0]), interpolation=interp).reshape(size[0], size[1], c)
    return (out >= 0.5).transpose(2, 0, 1)


# --- preparation ---------------------------------------------------------------------------------


def assign_splits(
    spec: TaskSpec, split: pd.DataFrame, cases: pd.DataFrame, *, where: Path | None = None
) -> pd.DataFrame:
    """``case_id, split[, group]`` for every case, checked against the cases found on disk
    (in ``where``, named in the error)."""
    if spec.option("split_unit") == "sequence":
        # The committed split names sequences; a contiguous tail of the training sequence validates.
        by_seq = dict(zip(split["case_id"], split["split"], strict=True))
        rows = cases.reset_index()[["case_id", "sequence"]].copy()
        rows["split"] = [by_seq.get(s, "") for s in rows["sequence"]]
        rows = rows[rows["split"] != ""].sort_values("case_id")
        train = rows[rows["split"] == "train"]
        n_val = int(round(len(train) * float(spec.option("val_fraction", 0.2))))
        if n_val:
            rows.loc[train.index[-n_val:], "split"] = "val"
        return rows.rename(columns={"sequence": "group"})[["case_id", "split", "group"]]
    missing = sorted(set(split["case_id"]) - set(cases.index))
    if missing:
        raise DataNotFoundError(
            f"{len(missing)} of the {len(split)} cases of task {spec.name!r} are missing from the "
            f"data: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
            + (f" (data read from {where})" if where is not None else "")
        )
    return split


def _read_case(spec: TaskSpec, loc: Located, case_id: str) -> tuple[np.ndarray, object]:
    ds = DATASETS.get(spec.dataset)
    image = ds.image(loc, case_id)
    target = ds.target(loc, case_id, spec.target)
    if image.ndim != 3 or image.dtype != np.uint8:
        raise DataError(
            f"{spec.name}: image {case_id} must be (H, W, C) uint8; got {image.shape} {image.dtype}"
        )
    if image.shape[2] != spec.input.channels:
        from medbench.data.datasets.base import to_hwc_uint8

        image = to_hwc_uint8(image, channels=spec.input.channels)
    if spec.input.size is not None:
        image = resize_image(image, spec.input.size)
        if spec.kind == "multilabel-segmentation":
            target = resize_masks(np.asarray(target), spec.input.size)
    elif spec.kind == "instance-segmentation" and np.asarray(target).shape != image.shape[:2]:
        raise DataError(
            f"{spec.name}: label map of {case_id} is {np.asarray(target).shape}, image is {image.shape[:2]}"
        )
    return image, target


def _stack(spec: TaskSpec, items: list) -> np.ndarray | Ragged:
    if spec.kind == "instance-segmentation":
        return Ragged.from_arrays([np.asarray(t, np.uint16) for t in items])
    if spec.kind == "multilabel-segmentation":
        return np.stack([np.asarray(t, bool) for t in items])
    return np.asarray(items, np.int64)


def prepare(
    spec: TaskSpec | str,
    *,
    from_dir: str | Path | None = None,
    force: bool = False,
    allow_download: bool = True,
    progress: Progress | None = None,
    workers: int | None = None,
) -> PreparedTask:
    """Prepare ``spec``'s data once (a ready cache returns at once unless ``force``)."""
    spec = get_task(spec) if isinstance(spec, str) else spec
    if not force and (ready := load_prepared(spec)) is not None:
        return ready
    # One preparer per task at a time: two `medbench run`s starting together would otherwise
    # each sweep away the other's temporary folder as a stale leftover.
    with locked(medbench_home() / "locks" / f"prepare-{prepared_dir(spec).name}.lock"):
        if not force and (ready := load_prepared(spec)) is not None:
            return ready  # prepared by another process while this one waited
        return _prepare(spec, from_dir, allow_download, progress, workers)


def _prepare(spec, from_dir, allow_download, progress, workers) -> PreparedTask:
    started = time.perf_counter()
    split = load_split(spec)
    loc = locate(spec.dataset, from_dir=from_dir, allow_download=allow_download)
    ds = DATASETS.get(spec.dataset)
    cases = ds.cases(loc)
    assigned = assign_splits(spec, split, cases, where=loc.root)
    total, done = len(assigned), 0
    # Only this task's leftovers: other tasks may be being prepared by another process.
    remove_stale_temporaries(prepared_dir(spec).parent, prefix=f".{prepared_dir(spec).name}.")
    workers = workers or min(8, os.cpu_count() or 1)
    remove_stale_temporaries(answers_dir(spec).parent, prefix=f".{answers_dir(spec).name}.")
    # The answers folder is renamed into place first; the prepared folder (with its manifest,
    # which says the cache is ready) last, so a crash in between leaves no usable half cache.
    with (
        atomic_dir(prepared_dir(spec)) as tmp,
        atomic_dir(answers_dir(spec)) as answers_tmp,
        ThreadPoolExecutor(workers) as pool,
    ):
        array_hashes: dict[str, str] = {}
        counts: dict[str, int] = {}
        for name in SPLITS:
            rows = assigned[assigned["split"] == name]
            ids = list(rows["case_id"])
            images, targets = [], []
            for image, target in pool.map(lambda c: _read_case(spec, loc, c), ids):
                images.append(image)
                targets.append(target)
                done += 1
                if progress:
                    progress(done, total)
            folder = tmp / name
            folder.mkdir()
            table = rows.reset_index(drop=True)
            extra = [c for c in cases.columns if c in ("source", "type")]
            for column in extra:
                table[column] = [cases.loc[c, column] for c in ids]
            table.to_csv(folder / "cases.csv", index=False, lineterminator="\n")
            image_array = (
                Ragged.from_arrays(images)
                if spec.input.size is None
                else np.stack(images)
                if images
                else np.zeros((0, *spec.input.size, spec.input.channels), np.uint8)
            )
            written = save_array(folder, "images", image_array)
            for path in [folder / "cases.csv", *written]:
                array_hashes[path.relative_to(tmp).as_posix()] = sha256_file(path)
            # Test labels go to the answers folder: the prepared folder never holds them.
            target_folder = answers_tmp if name == "test" else folder
            for path in save_array(target_folder, "targets", _stack(spec, targets)):
                rel = (
                    f"{ANSWERS}/{path.name}" if name == "test" else path.relative_to(tmp).as_posix()
                )
                array_hashes[rel] = sha256_file(path)
            counts[name] = len(ids)
        raw = dict(sorted(loc.read.items()))
        manifest = {
            "task": spec.name,
            "task_version": spec.version,
            "prep_version": PREP_VERSION,
            "split_sha256": spec.split_sha256,
            "medbench_version": __version__,
            "source": {"dataset": spec.dataset, "layout": loc.layout, "root": str(loc.root)},
            "counts": counts,
            "raw_files": raw,
            # The hash of the raw files alone (the same on every machine that reads them).
            "raw_sha256": sha256_bytes(
                "\n".join(f"{k} {v}" for k, v in sorted((raw or array_hashes).items())).encode()
            ),
            "arrays": array_hashes,
            "seconds": round(time.perf_counter() - started, 3),
        }
        manifest["data_sha256"] = data_hash(manifest)
        manifest["seal"] = _manifest_seal(manifest)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        # The answers folder is swapped before the prepared one: retire the old manifest first,
        # so a crash between the two swaps cannot pair the old manifest with the new answers.
        (prepared_dir(spec) / "manifest.json").unlink(missing_ok=True)
    ready = load_prepared(spec)
    assert ready is not None
    return ready


# --- status --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataStatus:
    task: str
    state: str  # prepared | available | generated | absent | damaged
    detail: str


def status(spec: TaskSpec | str, *, from_dir: str | Path | None = None) -> DataStatus:
    """Whether a task's data is prepared, available to prepare, or absent (and why)."""
    spec = get_task(spec) if isinstance(spec, str) else spec
    ds = DATASETS.get(spec.dataset)
    try:
        ready = load_prepared(spec)
    except ChecksumError as exc:
        return DataStatus(spec.name, "damaged", str(exc))
    if ready is not None:
        counts = "/".join(str(ready.manifest["counts"][s]) for s in SPLITS)
        return DataStatus(spec.name, "prepared", f"{counts} train/val/test at {ready.path}")
    if ds.generated:
        return DataStatus(
            spec.name, "generated", "synthetic; `medbench data prepare` makes it in seconds"
        )
    located, _ = find_local(ds, data_roots(from_dir))
    if located is not None:
        return DataStatus(spec.name, "available", f"{located.layout} layout at {located.root}")
    note = absent_note(spec.dataset, from_dir)
    how = "downloads on prepare" if ds.downloads else ds.obtain
    return DataStatus(spec.name, "absent", f"{note + '. ' if note else ''}{how}")
