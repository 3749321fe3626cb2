"""Where a data set's raw files come from: a local folder (official or mirror layout) or a download.

Order: ``--from DIR`` (or ``MEDBENCH_DATA``, which may list several folders separated by
``os.pathsep``) in either layout, then the official download where one is public, checked
against its checksum; otherwise a :class:`DataNotFoundError` that names the files expected and
how to obtain them.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import Callable
from pathlib import Path

from medbench.data.datasets import DATASETS, Download, Located, RawDataset
from medbench.data.files import atomic_path
from medbench.errors import ChecksumError, DataError, DataNotFoundError
from medbench.home import medbench_home  # noqa: F401 - re-exported: medbench.data.sources.medbench_home

Progress = Callable[[int, int], None]  # (done, total)


def data_roots(from_dir: str | Path | None = None) -> list[Path]:
    if from_dir is not None:
        return [Path(from_dir).expanduser()]
    env = os.environ.get("MEDBENCH_DATA", "")
    return [Path(p).expanduser() for p in env.split(os.pathsep) if p]


def _read_sha256sums(root: Path, base: Path) -> dict[str, str]:
    """Checksums from ``root/SHA256SUMS``, re-keyed relative to ``base`` (a folder under root)."""
    sums = root / "SHA256SUMS"
    if not sums.is_file():
        return {}
    prefix = base.relative_to(root).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    out = {}
    for line in sums.read_text().splitlines():
        parts = line.split(None, 1)
        if len(parts) != 2:
            continue
        # ``sha256sum -b`` (and its default on Windows) marks names with a leading '*'.
        name = parts[1].strip().lstrip("*")
        if name.startswith(prefix):
            out[name[len(prefix) :]] = parts[0]
    return out


def find_local(ds: RawDataset, roots: list[Path]) -> tuple[Located | None, list[Path]]:
    """The first folder among ``roots`` (or their ``mirror_dir`` child) holding ``ds``."""
    searched = []
    for root in roots:
        for candidate in (root / ds.mirror_dir, root):
            if not candidate.is_dir():
                continue
            searched.append(candidate)
            layout = ds.detect(candidate)
            if layout is not None:
                return Located(candidate, layout, _read_sha256sums(root, candidate)), searched
    return None, searched


def download(item: Download, folder: Path, *, progress: Progress | None = None) -> Path:
    """Fetch ``item`` into ``folder`` (atomically) and check its checksum."""
    target = folder / item.filename
    if target.is_file() and _matches(item, target):
        return target
    try:
        with urllib.request.urlopen(item.url, timeout=60) as response, atomic_path(target) as tmp:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            with open(tmp, "wb") as out:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
            if not _matches(item, tmp):
                raise ChecksumError(
                    f"download of {item.url} does not match its checksum "
                    f"(expected md5 {item.md5 or '-'} / sha256 {item.sha256 or '-'})"
                )
    except OSError as exc:
        raise DataError(f"could not download {item.url}: {exc}") from None
    return target


def _matches(item: Download, path: Path) -> bool:
    for algo, expected in (("md5", item.md5), ("sha256", item.sha256)):
        if expected:
            h = hashlib.new(algo)
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            if h.hexdigest() != expected:
                return False
    return True


def locate(
    dataset: str,
    *,
    from_dir: str | Path | None = None,
    allow_download: bool = True,
    progress: Progress | None = None,
) -> Located:
    """Find ``dataset``'s raw files, downloading them where that is possible and allowed."""
    ds = DATASETS.get(dataset)
    if ds.generated:
        return Located(Path(f"<generated:{ds.name}>"), "generated")
    located, searched = find_local(ds, data_roots(from_dir))
    if located is not None:
        return located
    if ds.downloads and allow_download:
        folder = medbench_home() / "downloads" / ds.name
        for item in ds.downloads:
            download(item, folder, progress=progress)
        layout = ds.detect(folder)
        if layout is not None:
            return Located(folder, layout)
    raise DataNotFoundError(ds.missing_message(searched))


def absent_note(dataset: str, from_dir: str | Path | None = None) -> str | None:
    """A reader's own explanation of data that is partly present (e.g. labels without images)."""
    ds = DATASETS.get(dataset)
    note = getattr(ds, "absent_note", None)
    if note is None:
        return None
    for root in data_roots(from_dir):
        for candidate in (root / ds.mirror_dir, root):
            if candidate.is_dir() and (text := note(candidate)):
                return f"{text} in {candidate}"
    return None
