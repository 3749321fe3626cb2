"""Finding raw data: local folders in either layout, checksummed downloads, clear 'not found'."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from medbench.data.datasets import DATASETS, Download
from medbench.data.prepare import prepare
from medbench.data.sources import _read_sha256sums, data_roots, find_local, locate, medbench_home
from medbench.errors import ChecksumError, DataError, DataNotFoundError


def test_medbench_home_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDBENCH_HOME", str(tmp_path / "h"))
    assert medbench_home() == tmp_path / "h"
    monkeypatch.delenv("MEDBENCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert medbench_home() == tmp_path / "cache" / "medbench"


def test_the_suite_never_uses_the_users_cache(medbench_home):
    assert Path(os.environ["MEDBENCH_HOME"]) == medbench_home


def test_data_roots(monkeypatch, tmp_path):
    monkeypatch.setenv(
        "MEDBENCH_DATA", os.pathsep.join([str(tmp_path / "a"), "", str(tmp_path / "b")])
    )
    assert data_roots() == [tmp_path / "a", tmp_path / "b"]
    assert data_roots(tmp_path / "c") == [tmp_path / "c"]  # --from wins over MEDBENCH_DATA
    monkeypatch.delenv("MEDBENCH_DATA")
    assert data_roots() == []


@pytest.mark.parametrize("marker", ["  ", " *"])  # text and binary mode of sha256sum
def test_sha256sums_are_re_keyed_to_the_data_set_folder(tmp_path, marker):
    (tmp_path / "isbi2012").mkdir()
    lines = [
        f"{'a' * 64}{marker}isbi2012/train/image/0.png",
        f"{'b' * 64}{marker}jsrt-scr/jsrt.csv",
        "",
    ]
    (tmp_path / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    assert _read_sha256sums(tmp_path, tmp_path / "isbi2012") == {"train/image/0.png": "a" * 64}
    assert _read_sha256sums(tmp_path, tmp_path) == {
        "isbi2012/train/image/0.png": "a" * 64,
        "jsrt-scr/jsrt.csv": "b" * 64,
    }


def test_locate_reports_where_it_searched_and_how_to_obtain(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDBENCH_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError) as info:
        locate("jsrt-scr")
    message = str(info.value)
    assert f"searched {tmp_path}" in message
    assert "All247images/<NAME>.IMG" in message and "jsrt.csv" in message
    assert "db.jsrt.or.jp" in message and "--from DIR" in message


def test_locate_with_nothing_given(monkeypatch):
    monkeypatch.delenv("MEDBENCH_DATA", raising=False)
    with pytest.raises(DataNotFoundError, match="nowhere"):
        locate("isbi2012")


def test_find_local_prefers_the_mirror_folder_then_the_root(tmp_path):
    ds = DATASETS.get("retinamnist")
    (tmp_path / "retinamnist").mkdir()
    (tmp_path / "retinamnist" / "retinamnist.npz").write_bytes(b"x")
    found, searched = find_local(ds, [tmp_path])
    assert found is not None and found.root == tmp_path / "retinamnist"
    found, _ = find_local(ds, [tmp_path / "retinamnist"])  # --from the data set's own folder
    assert found is not None and found.root == tmp_path / "retinamnist"
    found, searched = find_local(ds, [tmp_path / "absent"])
    assert found is None and searched == []


def test_generated_data_needs_no_source(monkeypatch):
    monkeypatch.delenv("MEDBENCH_DATA", raising=False)
    assert locate("toy-anatomy").layout == "generated"


# --- RetinaMNIST download ----------------------------------------------------------------------------


@pytest.fixture
def small_npz(tmp_path: Path) -> tuple[Path, str]:
    rng = np.random.default_rng(5)
    arrays = {}
    # The official sizes, so that the committed split applies; tiny all the same (3.8 MB).
    for split, n in (("train", 1080), ("val", 120), ("test", 400)):
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(n, 28, 28, 3), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 5, size=(n, 1))
    path = tmp_path / "served" / "retinamnist.npz"
    path.parent.mkdir()
    np.savez(path, **arrays)
    return path, hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def offline(tmp_path, monkeypatch, fresh_home) -> Path:
    """No local data anywhere, an empty MEDBENCH_HOME."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("MEDBENCH_DATA", str(empty))
    return fresh_home


def serve(monkeypatch, path: Path, md5: str) -> None:
    item = Download(url=path.as_uri(), filename="retinamnist.npz", md5=md5)
    monkeypatch.setattr(DATASETS.get("retinamnist"), "downloads", (item,))


def test_retinamnist_downloads_into_medbench_home(small_npz, offline, monkeypatch):
    path, md5 = small_npz
    serve(monkeypatch, path, md5)
    seen = []
    loc = locate("retinamnist", progress=lambda done, total: seen.append((done, total)))
    folder = offline / "downloads" / "retinamnist"
    assert loc.root == folder and loc.layout == "official"
    assert (folder / "retinamnist.npz").read_bytes() == path.read_bytes()
    assert [p.name for p in folder.iterdir()] == ["retinamnist.npz"]
    assert seen and seen[-1] == (path.stat().st_size, path.stat().st_size)
    # The download is found again rather than fetched again.
    path.unlink()
    assert locate("retinamnist").root == folder


def test_retinamnist_prepares_from_the_download(small_npz, offline, monkeypatch):
    path, md5 = small_npz
    serve(monkeypatch, path, md5)
    prepared = prepare("retinamnist")
    assert prepared.manifest["counts"] == {"train": 1080, "val": 120, "test": 400}
    assert prepared.source["root"] == str(offline / "downloads" / "retinamnist")
    with np.load(path) as official:
        val = prepared.split("val")
        np.testing.assert_array_equal(val.images, official["val_images"])
        np.testing.assert_array_equal(val.targets, official["val_labels"].ravel())


def test_wrong_md5_raises_and_leaves_nothing(small_npz, offline, monkeypatch):
    path, md5 = small_npz
    serve(monkeypatch, path, "0" * 32)
    with pytest.raises(ChecksumError) as info:
        locate("retinamnist")
    assert path.as_uri() in str(info.value) and "expected md5 " + "0" * 32 in str(info.value)
    folder = offline / "downloads" / "retinamnist"
    assert not folder.exists() or list(folder.iterdir()) == []


def test_no_download_when_not_allowed(small_npz, offline, monkeypatch):
    path, md5 = small_npz
    serve(monkeypatch, path, md5)
    with pytest.raises(DataNotFoundError, match="retinamnist"):
        locate("retinamnist", allow_download=False)
    assert not (offline / "downloads").exists()


def test_unreachable_download_is_a_data_error(tmp_path, offline, monkeypatch):
    serve(monkeypatch, tmp_path / "nowhere.npz", "0" * 32)
    with pytest.raises(DataError) as info:
        locate("retinamnist")
    assert type(info.value) is DataError
    assert "could not download" in str(info.value)
