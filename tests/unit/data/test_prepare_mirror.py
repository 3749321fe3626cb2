"""Every data set of the real mirror prepares with the documented counts, shapes and contents.

Each task is prepared once per session (the session's MEDBENCH_HOME is shared); later tests and
calls find the cache ready.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from medbench.data.arrays import Ragged
from medbench.data.datasets.dsb import image_type
from medbench.data.prepare import PreparedTask, prepare, status
from medbench.tasks.spec import SPLITS

pytestmark = pytest.mark.mirror

MIRROR_TASKS = {
    "jsrt-anatomy": (100, 24, 123),
    "jsrt-nodule": (148, 38, 61),
    "isbi2012-membranes": (20, 5, 5),
    "messidor2-referable": (1046, 261, 437),
    "messidor2-grading": (1046, 261, 437),
    "retinamnist": (1080, 120, 400),
    "pneumoniamnist": (4708, 524, 624),
    "breastmnist": (546, 78, 156),
    "dsb2018-nuclei": (431, 100, 133),
}


def ready(name: str, mirror: Path) -> PreparedTask:
    return prepare(name, from_dir=mirror)


def splits(prepared: PreparedTask):
    return [prepared.split(s) for s in SPLITS]


def all_targets(prepared: PreparedTask) -> np.ndarray:
    return np.concatenate([np.asarray(s.targets) for s in splits(prepared)])


def read_sha256sums(mirror: Path) -> dict[str, str]:
    out = {}
    for line in (mirror / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(None, 1)
        out[name.strip().lstrip("*")] = digest
    return out


@pytest.mark.parametrize("name", sorted(MIRROR_TASKS))
def test_prepares_with_the_documented_counts(mirror, name):
    prepared = ready(name, mirror)
    assert tuple(prepared.manifest["counts"][s] for s in SPLITS) == MIRROR_TASKS[name]
    for data in splits(prepared):
        assert len(data.images) == len(data.targets) == len(data.case_ids) == len(data.cases)
    assert status(name).state == "prepared"


@pytest.mark.parametrize("name", sorted(MIRROR_TASKS))
def test_a_second_prepare_returns_at_once(mirror, name):
    first = ready(name, mirror)
    started = time.perf_counter()
    again = ready(name, mirror)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5, f"a ready {name} took {elapsed:.2f} s to return"
    assert again.manifest == first.manifest


@pytest.mark.parametrize("name", sorted(MIRROR_TASKS))
def test_manifest_hashes_agree_with_the_mirror(mirror, name):
    prepared = ready(name, mirror)
    raw = prepared.manifest["raw_files"]
    assert raw, "no raw file recorded"
    sums = read_sha256sums(mirror)
    folder = Path(prepared.source["root"]).name
    for rel, digest in raw.items():
        assert sums[f"{folder}/{rel}"] == digest, rel
    prepared.verify()


def test_jsrt_anatomy(mirror):
    prepared = ready("jsrt-anatomy", mirror)
    for data in splits(prepared):
        n = len(data)
        assert data.images.shape == (n, 256, 256, 1) and data.images.dtype == np.uint8
        assert data.targets.shape == (n, 3, 256, 256) and data.targets.dtype == bool
        targets = np.asarray(data.targets)
        lungs = targets[:, 0].mean(axis=(1, 2))
        assert ((lungs > 0.15) & (lungs < 0.50)).all(), (lungs.min(), lungs.max())
        assert 0.25 < lungs.mean() < 0.40
        # Both lungs: lung pixels in each half of every image.
        assert targets[:, 0, :, :128].any(axis=(1, 2)).all()
        assert targets[:, 0, :, 128:].any(axis=(1, 2)).all()
        assert targets[:, 1].any(axis=(1, 2)).all(), "an empty heart mask"
        assert targets[:, 2].any(axis=(1, 2)).all(), "an empty clavicle mask"
        # Multi-label: most clavicle pixels lie inside a lung (SCR masks overlap).
        clavicles = targets[:, 2]
        assert (clavicles & targets[:, 0]).sum() / clavicles.sum() > 0.5
    test = prepared.split("test")
    assert all(int(c[-3:]) % 2 == 0 for c in test.case_ids)
    assert len(test) == 123


def test_jsrt_nodule(mirror):
    prepared = ready("jsrt-nodule", mirror)
    assert all_targets(prepared).sum() == 154
    for data in splits(prepared):
        assert data.images.shape[1:] == (256, 256, 1)
        expected = [int(c.startswith("JPCLN")) for c in data.case_ids]
        np.testing.assert_array_equal(data.targets, expected)


def test_jsrt_tasks_share_the_images(mirror):
    anatomy, nodule = ready("jsrt-anatomy", mirror), ready("jsrt-nodule", mirror)
    a, b = anatomy.split("test"), nodule.split("test")
    common = sorted(set(a.case_ids) & set(b.case_ids))[:5]
    assert common
    for case in common:
        np.testing.assert_array_equal(
            a.images[a.case_ids.index(case)], b.images[b.case_ids.index(case)]
        )


def test_isbi2012(mirror):
    prepared = ready("isbi2012-membranes", mirror)
    for data in splits(prepared):
        n = len(data)
        assert data.images.shape == (n, 512, 512, 1)
        assert data.targets.shape == (n, 1, 512, 512)
        membrane = np.asarray(data.targets).mean(axis=(1, 2, 3))
        assert ((membrane > 0.15) & (membrane < 0.30)).all(), membrane
    assert prepared.split("test").case_ids == tuple(f"slice-{i}" for i in range(25, 30))


def test_messidor2_referable(mirror):
    prepared = ready("messidor2-referable", mirror)
    assert all_targets(prepared).sum() == 457
    for data in splits(prepared):
        assert data.images.shape == (len(data), 384, 384, 3) and data.images.dtype == np.uint8
        assert set(np.unique(np.asarray(data.targets))) <= {0, 1}


def test_messidor2_grading(mirror):
    grading = ready("messidor2-grading", mirror)
    assert np.bincount(all_targets(grading), minlength=5).tolist() == [1017, 270, 347, 75, 35]
    referable = ready("messidor2-referable", mirror)
    for g, r in zip(splits(grading), splits(referable), strict=True):
        assert g.case_ids == r.case_ids
        np.testing.assert_array_equal(np.asarray(r.targets), np.asarray(g.targets) >= 2)
    # Fundus crops: the disc reaches the middle of the image, the corners are black.
    images = np.asarray(grading.split("val").images[:20], float)
    assert (images[:, 192, 192].mean(axis=1) > 20).all()
    assert images[:, :8, :8].mean() < 10


def test_retinamnist_equals_the_official_file(mirror):
    prepared = ready("retinamnist", mirror)
    with np.load(mirror / "retinamnist" / "retinamnist.npz") as official:
        for data in splits(prepared):
            assert data.images.shape == (len(data), 28, 28, 3)
            np.testing.assert_array_equal(data.images, official[f"{data.name}_images"])
            np.testing.assert_array_equal(data.targets, official[f"{data.name}_labels"].ravel())


@pytest.mark.parametrize(
    ("name", "to_task", "test_positives"),
    [
        ("pneumoniamnist", lambda label: label, 390),  # 1 = pneumonia, as in the file
        ("breastmnist", lambda label: 1 - label, 42),  # the file's 0 = malignant is the positive
    ],
)
def test_binary_medmnist_equals_the_official_file(mirror, name, to_task, test_positives):
    prepared = ready(name, mirror)
    with np.load(mirror / name / f"{name}.npz") as official:
        for data in splits(prepared):
            assert data.images.shape == (len(data), 28, 28, 1)
            np.testing.assert_array_equal(data.images[..., 0], official[f"{data.name}_images"])
            expected = to_task(official[f"{data.name}_labels"].ravel().astype(np.int64))
            np.testing.assert_array_equal(data.targets, expected)
    assert int(np.asarray(prepared.split("test").targets).sum()) == test_positives


def test_dsb2018(mirror):
    prepared = ready("dsb2018-nuclei", mirror)
    nuclei = 0
    for data in splits(prepared):
        assert isinstance(data.images, Ragged) and isinstance(data.targets, Ragged)
        assert data.images.dtype == np.uint8 and data.targets.dtype == np.uint16
        for image, labels, group in zip(
            data.images, data.targets, data.cases["group"], strict=True
        ):
            assert image.ndim == 3 and image.shape[2] == 3
            assert image.shape[:2] == labels.shape
            assert image_type(image) == group  # the split's stratum is the image's type
            ids = np.unique(labels)
            nuclei += int((ids != 0).sum())
    assert nuclei == 28_986
