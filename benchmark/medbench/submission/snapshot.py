"""A submission folder's content: its files, its hash, and the snapshot a run executes.

A run never executes the folder a user points at: the parent copies it into the run folder
first (:func:`snapshot`), hashes the bytes it copied, and the child imports the copy (mounted
read-only in the sandbox). So the record's ``content_sha256`` names exactly the code that ran,
even if ``model.py`` is edited while the run is going on.

What counts: every file, dot-files and stray ``.pyc`` files included, with names taken as bytes
(any encoding). ``__pycache__`` folders are neither copied nor hashed: they are caches of the
sources beside them, and the child compiles the snapshot's sources itself. A symbolic link is
followed only when it points inside the folder; one pointing out, a FIFO or a device is refused.

The hash: SHA-256 over, for each file in order of its path's parts, ``path + NUL +
SHA-256(bytes)``; for an ordinary folder (UTF-8 names, no dot-files or ``.pyc``) this is the
hash medbench has always recorded.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from medbench.errors import SubmissionError

DEFAULT_LIMIT_MB = 256  # a submission is code (and perhaps small weights), not data
_CACHE_DIRS = {b"__pycache__"}
_CHUNK = 1 << 20


@dataclass(frozen=True)
class SourceFile:
    parts: tuple[bytes, ...]  # path inside the folder, as bytes
    path: bytes  # where to read it (a link inside the folder is read at its target)
    size: int

    @property
    def rel(self) -> bytes:
        return b"/".join(self.parts)


def _shown(path: bytes) -> str:
    return os.fsdecode(path).encode("utf-8", "backslashreplace").decode("utf-8")


def list_files(folder: str | Path, *, limit_mb: float = DEFAULT_LIMIT_MB) -> list[SourceFile]:
    """Every file of ``folder``, sorted; a SubmissionError names anything that cannot be copied."""
    root = os.fsencode(os.path.realpath(folder))
    shown_root = _shown(os.fsencode(str(folder)))
    if not os.path.isdir(root):
        raise SubmissionError(f"submission folder {shown_root} does not exist")
    limit = int(limit_mb * 2**20)
    found: list[SourceFile] = []
    total = 0

    def walk(real_dir: bytes, parts: tuple[bytes, ...], seen: frozenset[bytes]) -> None:
        nonlocal total
        try:
            entries = sorted(os.scandir(real_dir), key=lambda e: e.name)
        except OSError as exc:
            raise SubmissionError(
                f"cannot read folder {_shown(real_dir)} of submission {shown_root}: "
                f"{exc.strerror or exc}"
            ) from None
        for entry in entries:
            name = entry.name
            rel = (*parts, name)
            shown = _shown(b"/".join(rel))
            path = entry.path
            try:
                info = os.lstat(path)
            except OSError as exc:
                raise SubmissionError(
                    f"{shown_root}: cannot read {shown}: {exc.strerror}"
                ) from None
            if stat.S_ISLNK(info.st_mode):
                target = os.path.realpath(path)
                if target != root and not target.startswith(root + b"/"):
                    raise SubmissionError(
                        f"{shown_root}: {shown} is a symbolic link to {_shown(target)}, outside "
                        "the submission folder; copy what it points to into the folder instead"
                    )
                try:
                    info = os.stat(target)
                except OSError as exc:
                    raise SubmissionError(
                        f"{shown_root}: {shown} is a broken symbolic link ({exc.strerror})"
                    ) from None
                path = target
            if stat.S_ISDIR(info.st_mode):
                if name in _CACHE_DIRS:
                    continue
                real = os.path.realpath(path)
                if real in seen:  # a link back to a folder above: a cycle
                    raise SubmissionError(
                        f"{shown_root}: {shown} links back to a folder above it (a cycle)"
                    )
                walk(real, rel, seen | {real})
            elif stat.S_ISREG(info.st_mode):
                total += info.st_size
                if total > limit:
                    raise SubmissionError(
                        f"submission folder {shown_root} holds more than {limit_mb:g} MiB "
                        f"(reached at {shown}); keep data and checkpoints out of it, or raise "
                        "--max-submission-mb"
                    )
                found.append(SourceFile(rel, path, info.st_size))
            else:
                raise SubmissionError(
                    f"{shown_root}: {shown} is not a regular file or folder (a FIFO, socket or "
                    "device); remove it"
                )

    walk(root, (), frozenset({root}))
    found.sort(key=lambda f: f.parts)
    return found


def _read_chunks(source: SourceFile, shown_root: str):
    try:
        fd = os.open(source.path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise SubmissionError(
            f"{shown_root}: cannot read {_shown(source.rel)}: {exc.strerror or exc}"
        ) from None
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


def _update(total: hashlib._Hash, source: SourceFile, digest: bytes) -> None:
    total.update(source.rel + b"\0")
    total.update(digest)


def content_hash(folder: str | Path, *, limit_mb: float = DEFAULT_LIMIT_MB) -> str:
    """The content hash of ``folder`` as it is now (what :func:`snapshot` would record)."""
    total = hashlib.sha256()
    for source in list_files(folder, limit_mb=limit_mb):
        h = hashlib.sha256()
        for chunk in _read_chunks(source, str(folder)):
            h.update(chunk)
        _update(total, source, h.digest())
    return total.hexdigest()


@dataclass(frozen=True)
class Snapshot:
    path: Path  # the copy
    content_sha256: str
    n_files: int
    n_bytes: int


def snapshot(
    folder: str | Path, dest: str | Path, *, limit_mb: float = DEFAULT_LIMIT_MB
) -> Snapshot:
    """Copy ``folder`` into the new folder ``dest`` (files read-only) and hash what was copied."""
    dest = Path(dest)
    dest.mkdir(parents=True)
    total = hashlib.sha256()
    n_bytes = 0
    files = list_files(folder, limit_mb=limit_mb)
    for source in files:
        target = os.path.join(os.fsencode(dest), source.rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        h = hashlib.sha256()
        size = 0
        with open(target, "wb") as out:
            for chunk in _read_chunks(source, str(folder)):
                size += len(chunk)
                if n_bytes + size > limit_mb * 2**20:  # the file grew while it was copied
                    raise SubmissionError(
                        f"submission folder {folder} holds more than {limit_mb:g} MiB "
                        f"(reached at {_shown(source.rel)})"
                    )
                h.update(chunk)
                out.write(chunk)
        os.chmod(target, 0o444)
        n_bytes += size
        _update(total, source, h.digest())
    return Snapshot(dest, total.hexdigest(), len(files), n_bytes)
