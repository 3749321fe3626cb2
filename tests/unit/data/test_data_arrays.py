"""Prepared array storage: plain and ragged arrays round-trip through .npy, memory-mapped."""

from __future__ import annotations

import numpy as np
import pytest

from medbench.data.arrays import Ragged, load_array, save_array


@pytest.fixture
def arrays() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 1000, size=s).astype(np.uint16) for s in ((3, 5), (7, 2), (1, 1), (4, 4))
    ]


def test_ragged_from_arrays_indexes_each_array(arrays):
    ragged = Ragged.from_arrays(arrays)
    assert len(ragged) == 4
    assert ragged.dtype == np.uint16
    assert ragged.shapes() == [(3, 5), (7, 2), (1, 1), (4, 4)]
    assert ragged.data.size == sum(a.size for a in arrays)
    for got, want in zip(ragged, arrays, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(ragged[-1], arrays[-1])
    sliced = ragged[1:3]
    assert len(sliced) == 2
    np.testing.assert_array_equal(sliced[0], arrays[1])


def test_ragged_round_trips_memory_mapped(tmp_path, arrays):
    files = save_array(tmp_path, "targets", Ragged.from_arrays(arrays))
    assert [f.name for f in files] == ["targets.data.npy", "targets.index.npy"]
    loaded = load_array(tmp_path, "targets")
    assert isinstance(loaded, Ragged)
    assert isinstance(loaded.data, np.memmap)
    assert not loaded.data.flags.writeable  # read-only: a submission cannot change the cache
    assert loaded.shapes() == [a.shape for a in arrays]
    for got, want in zip(loaded, arrays, strict=True):
        assert got.dtype == np.uint16
        np.testing.assert_array_equal(got, want)


def test_ragged_of_images_keeps_channels(tmp_path):
    images = [np.full((h, w, 3), h, np.uint8) for h, w in ((4, 6), (8, 3))]
    save_array(tmp_path, "images", Ragged.from_arrays(images))
    loaded = load_array(tmp_path, "images")
    assert loaded.shapes() == [(4, 6, 3), (8, 3, 3)]
    np.testing.assert_array_equal(loaded[1], images[1])


def test_empty_ragged_round_trips(tmp_path):
    save_array(tmp_path, "empty", Ragged.from_arrays([]))
    loaded = load_array(tmp_path, "empty")
    assert isinstance(loaded, Ragged) and len(loaded) == 0


def test_plain_array_round_trips_memory_mapped(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.int64).reshape(2, 3, 4)[:, ::-1]  # not contiguous
    files = save_array(tmp_path, "images", array)
    assert [f.name for f in files] == ["images.npy"]
    loaded = load_array(tmp_path, "images")
    assert isinstance(loaded, np.memmap)
    np.testing.assert_array_equal(loaded, array)
    in_memory = load_array(tmp_path, "images", mmap=False)
    assert not isinstance(in_memory, np.memmap)
    np.testing.assert_array_equal(in_memory, array)


def test_load_array_of_nothing_is_none(tmp_path):
    assert load_array(tmp_path, "absent") is None
