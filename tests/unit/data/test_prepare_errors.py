"""Bad input gets a clear error, and a failed prepare leaves nothing half-written behind."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import medbench.tasks.splits as splits_module
from fakes import fake_isbi_mirror
from medbench.data.files import sha256_file
from medbench.data.prepare import prepare, prepared_dir
from medbench.errors import ChecksumError, DataError, DataNotFoundError, SplitError
from medbench.tasks import get_task
from medbench.tasks.splits import SPLIT_DIR, load_split


def assert_nothing_written(task: str) -> None:
    """No cache for ``task`` and no temporary leftovers beside where it would be."""
    target = prepared_dir(get_task(task))
    assert not target.exists()
    if target.parent.exists():
        leftovers = [p.name for p in target.parent.iterdir() if p.name.startswith(".")]
        assert leftovers == []


def link_tree(source: Path, target: Path, *, only: set[str] | None = None) -> Path:
    """Mirror ``source`` into ``target`` with symbolic links to its files (copies if links fail).

    ``only``: relative paths to include (all files when None).
    """
    source = source.resolve()  # links must not be relative to where the test runs
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source).as_posix()
        if path.is_dir() or (only is not None and rel not in only):
            continue
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.symlink(path, dest)
        except OSError:
            shutil.copyfile(path, dest)
    return target


def replace_file(path: Path, data: bytes) -> None:
    """Replace a (possibly linked) file without ever writing through the link."""
    path.unlink()
    path.write_bytes(data)


# --- synthetic ISBI mirror layout (no real data needed) --------------------------------------------


@pytest.fixture
def isbi_mini(tmp_path: Path) -> Path:
    """A mirror-layout root holding ``isbi2012/train/{image,label}/{0..29}.png`` (32x32)."""
    return fake_isbi_mirror(tmp_path / "mini")


def write_sha256sums(root: Path, *, wrong: str | None = None, marker: str = "  ") -> str:
    """A SHA256SUMS over every file under ``root``; the entry for ``wrong`` is corrupted."""
    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        digest = sha256_file(path)
        if rel == wrong:
            digest = "0" * 64
        lines.append(f"{digest}{marker}{rel}\n")
    (root / "SHA256SUMS").write_text("".join(lines))
    return "0" * 64


def test_isbi_mini_mirror_prepares(isbi_mini, fresh_home):
    write_sha256sums(isbi_mini)
    prepared = prepare("isbi2012-membranes", from_dir=isbi_mini)
    assert prepared.manifest["counts"] == {"train": 20, "val": 5, "test": 5}
    assert prepared.source["layout"] == "mirror"
    assert len(prepared.manifest["raw_files"]) == 60


@pytest.mark.parametrize("marker", ["  ", " *"])  # sha256sum's text and binary mode
def test_checksum_mismatch_names_file_expected_and_found(isbi_mini, fresh_home, marker):
    bad = "isbi2012/train/label/3.png"
    expected = write_sha256sums(isbi_mini, wrong=bad, marker=marker)
    found = sha256_file(isbi_mini / bad)
    with pytest.raises(ChecksumError) as info:
        prepare("isbi2012-membranes", from_dir=isbi_mini)
    message = str(info.value)
    assert str(isbi_mini / bad) in message
    assert f"expected SHA-256 {expected}, found {found}" in message
    assert_nothing_written("isbi2012-membranes")


def truncated_png(path: Path) -> bytes:
    data = path.read_bytes()
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    "corrupt",
    [truncated_png, lambda path: np.random.default_rng(0).bytes(2000), lambda path: b""],
    ids=["truncated-png", "random-bytes", "empty"],
)
def test_unreadable_image_names_the_file(isbi_mini, fresh_home, corrupt):
    bad = isbi_mini / "isbi2012" / "train" / "image" / "2.png"
    replace_file(bad, corrupt(bad))
    with pytest.raises(DataError, match=rf"cannot read image {bad}"):
        prepare("isbi2012-membranes", from_dir=isbi_mini)
    assert_nothing_written("isbi2012-membranes")


def test_missing_isbi_label_names_the_file(isbi_mini, fresh_home):
    missing = isbi_mini / "isbi2012" / "train" / "label" / "27.png"
    missing.unlink()
    with pytest.raises(DataNotFoundError, match=rf"missing file {missing}"):
        prepare("isbi2012-membranes", from_dir=isbi_mini)
    assert_nothing_written("isbi2012-membranes")


def test_changed_split_file_is_refused_before_anything_is_written(
    tmp_path, monkeypatch, fresh_home
):
    folder = tmp_path / "splits"
    shutil.copytree(SPLIT_DIR, folder)
    monkeypatch.setattr(splits_module, "SPLIT_DIR", folder)
    path = folder / "toy-anatomy.csv"
    path.write_bytes(path.read_bytes().replace(b"toy-anatomy-0000,train", b"toy-anatomy-0000,test"))
    with pytest.raises(SplitError, match="toy-anatomy.csv of task 'toy-anatomy' has changed"):
        prepare("toy-anatomy")
    assert_nothing_written("toy-anatomy")


def test_a_failed_prepare_keeps_the_previous_cache(isbi_mini, fresh_home):
    first = prepare("isbi2012-membranes", from_dir=isbi_mini)
    manifest = (first.path / "manifest.json").read_bytes()
    replace_file(isbi_mini / "isbi2012" / "train" / "image" / "0.png", b"junk")
    with pytest.raises(DataError):
        prepare("isbi2012-membranes", from_dir=isbi_mini, force=True)
    assert (first.path / "manifest.json").read_bytes() == manifest
    assert [p.name for p in first.path.parent.iterdir()] == [first.path.name]


# --- copies of the real JSRT mirror ----------------------------------------------------------------


@pytest.mark.mirror
def test_missing_jsrt_mask_names_the_file(mirror, tmp_path, fresh_home):
    root = link_tree(mirror / "jsrt-scr", tmp_path / "mini" / "jsrt-scr")
    split = load_split(get_task("jsrt-anatomy"))
    case = split.loc[split["split"] == "train", "case_id"].iloc[3]
    missing = root / "masks" / "heart" / f"{case}.png"
    missing.unlink()
    with pytest.raises(DataNotFoundError, match=rf"missing file {missing}"):
        prepare("jsrt-anatomy", from_dir=tmp_path / "mini")
    assert_nothing_written("jsrt-anatomy")


@pytest.mark.mirror
def test_jsrt_with_few_cases_says_how_many_are_missing(mirror, tmp_path, fresh_home):
    table = pd.read_csv(mirror / "jsrt-scr" / "jsrt.csv", dtype=str)
    keep = ["JPCLN001", "JPCLN002", "JPCNN001", "JPCNN002", "JPCNN003"]
    only = {"jsrt.csv"} | {f"images/{n}.png" for n in keep}
    only |= {f"masks/{s}/{n}.png" for n in keep for s in ("left_lung", "right_lung", "heart")}
    root = link_tree(mirror / "jsrt-scr", tmp_path / "mini" / "jsrt-scr", only=only)
    replace_file(root / "jsrt.csv", table[table["name"].isin(keep)].to_csv(index=False).encode())
    with pytest.raises(DataNotFoundError) as info:
        prepare("jsrt-anatomy", from_dir=tmp_path / "mini")
    message = str(info.value)
    assert "242 of the 247 cases of task 'jsrt-anatomy' are missing from the data" in message
    assert "JPCLN003, JPCLN004, JPCLN005, JPCLN006, JPCLN007 ..." in message
    assert_nothing_written("jsrt-anatomy")
