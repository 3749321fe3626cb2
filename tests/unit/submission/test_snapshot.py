"""The snapshot of a submission folder: what is copied, what is hashed, what is refused."""

from __future__ import annotations

import os
import stat

import pytest

from medbench.errors import SubmissionError
from medbench.submission.snapshot import content_hash, list_files, snapshot


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "sub"
    root.mkdir()
    (root / "submission.toml").write_text('[submission]\nname = "x"\n')
    (root / "model.py").write_text("VALUE = 1\n")
    return root


def test_the_hash_changes_with_every_file_that_could_run(folder):
    base = content_hash(folder)
    for rel, data in [
        (".hidden/loader.py", b"import os"),  # a dot-folder on sys.path is still code
        ("stray.pyc", b"\x00bytecode"),  # a sourceless .pyc imports without its .py
        (".env", b"SECRET=1"),
    ]:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        changed = content_hash(folder)
        assert changed != base, rel
        base = changed


def test_bytecode_caches_are_neither_copied_nor_hashed(folder, tmp_path):
    before = content_hash(folder)
    cache = folder / "__pycache__"
    cache.mkdir()
    (cache / "model.cpython-311.pyc").write_bytes(b"cached")
    assert content_hash(folder) == before
    snap = snapshot(folder, tmp_path / "copy")
    assert not (snap.path / "__pycache__").exists()
    assert snap.content_sha256 == before


def test_the_snapshot_is_a_read_only_copy_hashed_as_content_hash(folder, tmp_path):
    (folder / "pkg").mkdir()
    (folder / "pkg" / "layers.py").write_text("X = 2\n")
    snap = snapshot(folder, tmp_path / "copy")
    assert snap.content_sha256 == content_hash(folder)
    assert (snap.n_files, snap.n_bytes) == (3, sum(f.size for f in list_files(folder)))
    copied = snap.path / "pkg" / "layers.py"
    assert copied.read_text() == "X = 2\n"
    assert not stat.S_IMODE(copied.stat().st_mode) & 0o222
    # Changing the source afterwards changes nothing in the copy.
    (folder / "model.py").write_text("VALUE = 2\n")
    assert (snap.path / "model.py").read_text() == "VALUE = 1\n"


def test_a_link_inside_the_folder_is_copied_as_what_it_points_to(folder, tmp_path):
    (folder / "real").mkdir()
    (folder / "real" / "w.txt").write_text("weights")
    os.symlink("real", folder / "alias")
    snap = snapshot(folder, tmp_path / "copy")
    assert (snap.path / "alias" / "w.txt").read_text() == "weights"
    assert not (snap.path / "alias").is_symlink()


@pytest.mark.parametrize("target", ["outside-file", "outside-dir"])
def test_a_link_out_of_the_folder_is_refused(folder, tmp_path, target):
    outside = tmp_path / target
    if target.endswith("dir"):
        outside.mkdir()
    else:
        outside.write_text("the user's file")
    os.symlink(outside, folder / "link")
    with pytest.raises(
        SubmissionError, match=r"link is a symbolic link to .* outside the submission folder"
    ):
        content_hash(folder)


def test_a_link_cycle_is_refused(folder):
    (folder / "d").mkdir()
    os.symlink("..", folder / "d" / "up")
    with pytest.raises(SubmissionError, match="links back to a folder above it"):
        list_files(folder)


def test_a_fifo_is_refused(folder):
    os.mkfifo(folder / "pipe")
    with pytest.raises(SubmissionError, match="pipe is not a regular file or folder"):
        list_files(folder)


def test_a_folder_over_the_size_cap_is_refused_naming_the_file(folder):
    (folder / "big.bin").write_bytes(b"\0" * 3 * 2**20)
    with pytest.raises(SubmissionError, match=r"holds more than 2 MiB \(reached at big.bin\)"):
        content_hash(folder, limit_mb=2)


def test_file_names_are_bytes_in_any_encoding(folder, tmp_path):
    odd = os.path.join(os.fsencode(folder), b"caf\xe9.py")  # latin-1, not UTF-8
    with open(odd, "wb") as f:
        f.write(b"X = 3\n")
    snap = snapshot(folder, tmp_path / "copy")
    assert os.path.exists(os.path.join(os.fsencode(snap.path), b"caf\xe9.py"))
    assert snap.content_sha256 == content_hash(folder)


def test_a_missing_folder_is_one_clear_error(tmp_path):
    with pytest.raises(SubmissionError, match="does not exist"):
        content_hash(tmp_path / "nowhere")
