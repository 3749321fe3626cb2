"""Prepared caches on the synthetic toy tasks: made once, complete, hashed, invalidated when stale."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from medbench.data.datasets.toy import toy_anatomy_case, toy_lesions_case
from medbench.data.prepare import (
    answers_dir,
    load_prepared,
    prepare,
    prepared_dir,
    resize_image,
    resize_masks,
    status,
)
from medbench.errors import ChecksumError
from medbench.tasks import get_task


def test_toy_anatomy_prepares_complete_arrays(fresh_home):
    seen = []
    prepared = prepare("toy-anatomy", progress=lambda done, total: seen.append((done, total)))
    assert prepared.path == fresh_home / "prepared" / "toy-anatomy-v1"
    assert prepared.manifest["counts"] == {"train": 168, "val": 42, "test": 70}
    assert seen[-1] == (280, 280) and len(seen) == 280
    test = prepared.split("test")
    assert test.images.shape == (70, 64, 64, 1) and test.images.dtype == np.uint8
    assert test.targets.shape == (70, 3, 64, 64) and test.targets.dtype == bool
    image, masks = toy_anatomy_case(int(test.case_ids[5].rsplit("-", 1)[1]))
    np.testing.assert_array_equal(test.images[5], image)
    np.testing.assert_array_equal(test.targets[5], masks)
    assert list(test.cases.columns) == ["case_id", "split"]
    assert prepared.split("test", with_targets=False).targets is None


def test_toy_lesions_labels(fresh_home):
    prepared = prepare("toy-lesions")
    val = prepared.split("val")
    assert val.targets.dtype == np.int64
    expected = [toy_lesions_case(int(c.rsplit("-", 1)[1]))[1] for c in val.case_ids]
    np.testing.assert_array_equal(val.targets, expected)


def test_manifest_records_what_was_made(fresh_home):
    prepared = prepare("toy-anatomy")
    manifest = json.loads((prepared.path / "manifest.json").read_text())
    spec = get_task("toy-anatomy")
    assert manifest["task"] == "toy-anatomy" and manifest["task_version"] == spec.version
    assert manifest["split_sha256"] == spec.split_sha256
    assert manifest["source"]["layout"] == "generated"
    # Test labels live in the answers folder, never beside what a submission is handed.
    assert set(manifest["arrays"]) == {
        f"{s}/{f}" for s in ("train", "val", "test") for f in ("cases.csv", "images.npy")
    } | {"train/targets.npy", "val/targets.npy", "answers/targets.npy"}
    assert not (prepared.path / "test" / "targets.npy").exists()
    assert (answers_dir(spec) / "targets.npy").is_file()
    assert len(manifest["data_sha256"]) == 64
    prepared.verify()  # every array file matches its recorded hash


def test_a_ready_cache_is_returned_at_once_and_not_rewritten(fresh_home):
    first = prepare("toy-anatomy")
    stamp = (first.path / "manifest.json").stat().st_mtime_ns
    started = time.perf_counter()
    again = prepare("toy-anatomy")
    assert time.perf_counter() - started < 0.5
    assert again.path == first.path and again.manifest == first.manifest
    assert (first.path / "manifest.json").stat().st_mtime_ns == stamp


def test_force_prepares_again(fresh_home):
    first = prepare("toy-lesions")
    (first.path / "stray.txt").write_text("not part of the cache")
    again = prepare("toy-lesions", force=True)
    assert not (again.path / "stray.txt").exists()
    assert again.data_sha256 == first.data_sha256  # generated data is deterministic


@pytest.mark.parametrize(
    ("key", "value"), [("prep_version", -1), ("task_version", 99), ("split_sha256", "0" * 64)]
)
def test_a_stale_cache_is_not_used(fresh_home, key, value):
    prepared = prepare("toy-lesions")
    manifest = json.loads((prepared.path / "manifest.json").read_text())
    manifest[key] = value
    (prepared.path / "manifest.json").write_text(json.dumps(manifest))
    assert load_prepared("toy-lesions") is None
    assert prepare("toy-lesions").manifest[key] != value  # prepared again


def test_an_unreadable_manifest_is_not_used(fresh_home):
    prepared = prepare("toy-lesions")
    (prepared.path / "manifest.json").write_text("{ half a manifest")
    assert load_prepared("toy-lesions") is None


def test_verify_names_a_changed_array(fresh_home):
    prepared = prepare("toy-lesions")
    path = answers_dir(prepared.spec) / "targets.npy"  # the hidden test labels
    path.write_bytes(path.read_bytes()[:-8] + b"\x01" * 8)
    with pytest.raises(ChecksumError, match=rf"prepared file {path} changed after preparation"):
        prepared.verify()
    path.unlink()
    with pytest.raises(ChecksumError, match=rf"prepared file {path} is missing"):
        prepared.verify()


def _count_hashes(monkeypatch) -> list[str]:
    import medbench.data.prepare as prepare_module

    hashed: list[str] = []
    real = prepare_module.sha256_file

    def counting(path):
        hashed.append(str(path))
        return real(path)

    monkeypatch.setattr(prepare_module, "sha256_file", counting)
    return hashed


def test_verify_rehashes_only_files_whose_stat_stamp_changed(fresh_home, monkeypatch):
    prepared = prepare("toy-lesions")
    hashed = _count_hashes(monkeypatch)
    prepared.verify()
    n_files = len(prepared.manifest["arrays"])
    assert len(hashed) == n_files  # the first check hashes everything and keeps the stamps
    prepared.verify()
    assert len(hashed) == n_files  # unchanged files: no re-hash
    prepared.verify(full=True)
    assert len(hashed) == 2 * n_files  # asked for: everything again

    # Same size, same modification time put back: the change time still tells.
    path = answers_dir(prepared.spec) / "targets.npy"
    before = path.stat()
    path.write_bytes(path.read_bytes()[:-8] + b"\x01" * 8)
    import os

    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(ChecksumError, match="changed after preparation"):
        prepared.verify()


def test_forged_stamps_do_not_skip_the_hash(fresh_home, monkeypatch):
    prepared = prepare("toy-lesions")
    prepared.verify()
    path = answers_dir(prepared.spec) / "targets.npy"
    path.write_bytes(path.read_bytes()[:-8] + b"\x01" * 8)
    # Someone rewrites the stamps to the changed file's stat without the installation key.
    saved = json.loads((prepared.path / "verified.json").read_text())
    st = path.stat()
    rel = next(
        r
        for r in saved["stamps"]
        if r.endswith("answers/targets.npy") or r == "answers/targets.npy"
    )
    saved["stamps"][rel] = [st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]
    (prepared.path / "verified.json").write_text(json.dumps(saved))
    with pytest.raises(ChecksumError, match="changed after preparation"):
        prepared.verify()


def test_prepare_clears_its_own_leftovers_but_not_another_tasks(fresh_home):
    spec = get_task("toy-lesions")
    parent = prepared_dir(spec).parent
    mine = parent / f".toy-lesions-v{spec.version}.crashed.tmp"
    old = parent / f".toy-lesions-v{spec.version}.old-99999"
    # Another process may be preparing another task right now: its temporary folder must stay.
    theirs = parent / ".toy-anatomy-v1.inprogress.tmp"
    for folder in (mine, old, theirs):
        (folder / "train").mkdir(parents=True)
    prepare("toy-lesions")
    assert not mine.exists() and not old.exists()
    assert (theirs / "train").is_dir()


def test_status_of_a_generated_task(fresh_home):
    assert status("toy-anatomy").state == "generated"
    prepare("toy-anatomy")
    st = status("toy-anatomy")
    assert st.state == "prepared"
    assert st.detail.startswith("168/42/70 train/val/test at ")


# --- resizing ----------------------------------------------------------------------------------------


def test_resize_image_shrinks_by_area():
    image = np.zeros((4, 4, 1), np.uint8)
    image[:2, :2] = 200
    out = resize_image(image, (2, 2))
    assert out.shape == (2, 2, 1)
    np.testing.assert_array_equal(out[..., 0], [[200, 0], [0, 0]])


def test_resize_image_keeps_size_and_channels():
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert resize_image(image, (5, 7)) is image
    assert resize_image(image, (10, 14)).shape == (10, 14, 3)


def test_resize_masks_thresholds_the_area_fraction():
    masks = np.zeros((2, 4, 4), bool)
    masks[0, :2, :2] = True  # a full block -> 1.0
    masks[1, 0, :2] = True  # half a block -> 0.5: kept
    masks[1, 2, 2] = True  # a quarter -> dropped
    out = resize_masks(masks, (2, 2))
    assert out.dtype == bool and out.shape == (2, 2, 2)
    np.testing.assert_array_equal(out[0], [[True, False], [False, False]])
    np.testing.assert_array_equal(out[1], [[True, False], [False, False]])


def test_resize_masks_enlarges_by_nearest():
    masks = np.array([[[True, False], [False, True]]])
    out = resize_masks(masks, (4, 4))
    np.testing.assert_array_equal(out[0], np.kron(masks[0], np.ones((2, 2), bool)))
