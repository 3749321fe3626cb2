"""Hashing and atomic writes: an interrupted write leaves the old file or the new one, never half."""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path

import pytest

from medbench.data.files import (
    atomic_dir,
    atomic_path,
    remove_stale_temporaries,
    sha256_bytes,
    sha256_file,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)


def disk_full() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


def test_sha256_file_and_bytes_agree_with_hashlib(tmp_path):
    data = bytes(range(256)) * 5000  # more than one read chunk
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == sha256_bytes(data) == hashlib.sha256(data).hexdigest()


def test_atomic_path_writes_the_target(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        assert not target.exists()  # nothing appears before the body succeeds
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]


def test_atomic_path_leaves_no_file_on_a_full_disk(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(OSError) as info:
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half of it")
            raise disk_full()
    assert info.value.errno == errno.ENOSPC
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(OSError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"new but incomplete")
            raise disk_full()
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_path_cleans_up_on_keyboard_interrupt(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"x")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_write_helpers(tmp_path):
    write_bytes_atomic(tmp_path / "a.bin", b"\x00\x01")
    write_text_atomic(tmp_path / "b.txt", "héllo")
    write_json_atomic(tmp_path / "c.json", {"nan": float("nan"), "x": [1, 2]})
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_bytes() == "héllo".encode()
    text = (tmp_path / "c.json").read_text()
    assert text.endswith("\n")
    loaded = json.loads(text)
    assert loaded["x"] == [1, 2] and loaded["nan"] != loaded["nan"]


def test_atomic_dir_creates_the_folder(tmp_path):
    target = tmp_path / "prepared" / "task-v1"
    with atomic_dir(target) as tmp:
        assert tmp.is_dir() and list(tmp.iterdir()) == []
        (tmp / "a.txt").write_text("a")
        assert not target.exists()
    assert (target / "a.txt").read_text() == "a"
    assert [p.name for p in target.parent.iterdir()] == ["task-v1"]


def test_atomic_dir_replaces_an_existing_folder(tmp_path):
    target = tmp_path / "task-v1"
    (target / "old-sub").mkdir(parents=True)
    (target / "old.txt").write_text("old")
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert (target / "new.txt").read_text() == "new"
    # Neither the temporary folder nor the moved-aside old one is left behind.
    assert [p.name for p in tmp_path.iterdir()] == ["task-v1"]


def test_atomic_dir_keeps_the_old_folder_on_failure(tmp_path):
    target = tmp_path / "task-v1"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(OSError):
        with atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("new")
            raise disk_full()
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["task-v1"]


def test_remove_stale_temporaries(tmp_path):
    keep = [tmp_path / "results.json", tmp_path / "task-v1"]
    keep[0].write_text("{}")
    keep[1].mkdir()
    stale_file = tmp_path / ".results.json.abc123.tmp"
    stale_file.write_text("half")
    stale_dir = tmp_path / ".task-v1.xyz.tmp"
    stale_dir.mkdir()
    (stale_dir / "train").mkdir()
    old = tmp_path / ".task-v1.old-1234"
    old.mkdir()
    removed = remove_stale_temporaries(tmp_path)
    assert set(removed) == {stale_file, stale_dir, old}
    assert sorted(tmp_path.iterdir()) == sorted(keep)


def test_remove_stale_temporaries_of_a_missing_folder(tmp_path):
    assert remove_stale_temporaries(tmp_path / "absent") == []


def test_remove_stale_temporaries_with_a_prefix_spares_other_names(tmp_path):
    mine = tmp_path / ".task-a-v1.x1.tmp"
    theirs = tmp_path / ".task-b-v1.x2.tmp"
    mine.mkdir()
    theirs.mkdir()
    assert remove_stale_temporaries(tmp_path, prefix=".task-a-v1.") == [mine]
    assert theirs.is_dir() and not mine.exists()


def test_atomic_path_accepts_str(tmp_path: Path):
    with atomic_path(str(tmp_path / "s.txt")) as tmp:
        tmp.write_text("ok")
    assert (tmp_path / "s.txt").read_text() == "ok"
