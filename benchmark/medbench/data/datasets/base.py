"""The reader interface every raw data set implements, and the image helpers they share.

A :class:`RawDataset` knows how to recognise its files in a folder (the official layout a user
downloads, or the layout of the local mirror), list its cases, and read one case's image and
annotation as numpy arrays at native resolution. Resizing to a task's size happens in
:mod:`medbench.data.prepare`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from medbench.errors import ChecksumError, DataError, DataNotFoundError
from medbench.registry import Registry


@dataclass(frozen=True)
class Download:
    """A public file medbench may fetch itself, with the checksum it must match."""

    url: str
    filename: str
    md5: str = ""
    sha256: str = ""


@dataclass
class Located:
    """A data set found on disk: its folder, which layout it is in, and known file hashes.

    ``checksums`` maps paths relative to ``root`` to their SHA-256 (from the mirror's
    ``SHA256SUMS``); every file read is checked against it, and its hash is recorded in
    ``read`` for the prepared manifest.
    """

    root: Path
    layout: str
    checksums: dict[str, str] = field(default_factory=dict)
    read: dict[str, str] = field(default_factory=dict)
    cache: dict[str, object] = field(default_factory=dict)  # readers keep parsed tables here

    def path(self, relative: str) -> Path:
        return self.root / relative

    def note_read(self, path: Path) -> None:
        """Hash a raw file that was read; compare with the known checksum if there is one."""
        from medbench.data.files import sha256_file

        rel = path.relative_to(self.root).as_posix()
        if rel in self.read:
            return
        found = sha256_file(path)
        expected = self.checksums.get(rel)
        if expected is not None and expected != found:
            raise ChecksumError(
                f"checksum mismatch for {path}: expected SHA-256 {expected}, found {found}; "
                "the file is corrupt or was changed"
            )
        self.read[rel] = found


class RawDataset(ABC):
    """A public data set in the layouts medbench can read."""

    name: str = ""
    title: str = ""
    mirror_dir: str = ""  # folder name inside the mirror (MEDBENCH_DATA)
    obtain: str = ""  # how a user gets the files (registration, URL)
    licence: str = ""
    #: False when the terms forbid redistributing the images: a run's worst-cases gallery, which
    #: is committed beside its record, then draws the outlines on black, without the image.
    images_redistributable: bool = True
    expected: dict[str, str] = {}  # layout -> the files it expects, for error messages
    downloads: tuple[Download, ...] = ()
    generated: bool = False  # synthetic: made by medbench, needs no source

    @abstractmethod
    def detect(self, root: Path) -> str | None:
        """The layout name if ``root`` holds this data set, else None."""

    @abstractmethod
    def cases(self, loc: Located) -> pd.DataFrame:
        """One row per case (index ``case_id``), with any columns the splits need."""

    @abstractmethod
    def image(self, loc: Located, case_id: str) -> np.ndarray:
        """The case's image, ``(H, W, C)`` uint8, at native resolution."""

    @abstractmethod
    def target(self, loc: Located, case_id: str, target: str) -> object:
        """The case's annotation for ``target``: an int label, a ``(C, H, W)`` bool mask
        stack or an ``(H, W)`` integer label map."""

    def missing_message(self, searched: list[Path]) -> str:
        where = ", ".join(str(p) for p in searched) or "nowhere (no folder given)"
        layouts = "; ".join(f"{k}: {v}" for k, v in self.expected.items())
        return (
            f"data set {self.name!r} ({self.title}) not found; searched {where}. "
            f"Expected {layouts}. {self.obtain} Then run `medbench data prepare --from DIR` "
            f"or set MEDBENCH_DATA to a folder holding {self.mirror_dir!r}."
        )


DATASETS: Registry[RawDataset] = Registry("data set")


def read_image(path: Path, loc: Located | None = None, *, mode: str | None = None) -> np.ndarray:
    """Read an image file as a numpy array; a clear DataError names an unreadable file."""
    if not path.is_file():
        raise DataNotFoundError(f"missing file {path}")
    if loc is not None:
        loc.note_read(path)
    try:
        with Image.open(path) as im:
            if mode is not None and im.mode != mode:
                im = im.convert(mode)
            return np.array(im)
    except Image.DecompressionBombError as exc:
        # A header that declares a huge image: refuse before decoding (memory would run out).
        raise DataError(f"cannot read image {path}: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def read_tiff(path: Path, loc: Located | None = None) -> np.ndarray:
    """A (multipage) TIFF file as a numpy array; a clear DataError names an unreadable file."""
    import tifffile

    if not path.is_file():
        raise DataNotFoundError(f"missing file {path}")
    if loc is not None:
        loc.note_read(path)
    try:
        return np.asarray(tifffile.imread(path))
    except Exception as exc:  # tifffile raises many types on corrupt files
        raise DataError(f"cannot read TIFF {path}: {exc}") from None


def to_hwc_uint8(a: np.ndarray, *, channels: int) -> np.ndarray:
    """Make ``(H, W, channels)`` uint8 from grey or RGB(A) input (grey is repeated for RGB)."""
    if a.dtype != np.uint8:
        raise DataError(f"expected an 8-bit image; got dtype {a.dtype}")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] == 4:
        a = a[:, :, :3]
    if channels == 1 and a.shape[2] == 3:
        # ITU-R BT.601 luma, as PIL's "L" conversion.
        a = np.rint(a @ np.array([0.299, 0.587, 0.114])).clip(0, 255).astype(np.uint8)[:, :, None]
    elif channels == 3 and a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return a


def rescale_to_uint8(a: np.ndarray) -> np.ndarray:
    """Min-max rescale a 16-bit (or float) image to uint8; constant images become 0."""
    a = a.astype(np.float64)
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return np.rint((a - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def read_csv(path: Path, loc: Located | None, *, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise DataNotFoundError(f"missing file {path}")
    if loc is not None:
        loc.note_read(path)
    try:
        table = pd.read_csv(path, dtype=str)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"cannot read table {path}: {exc}") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(f"{path} lacks column(s) {missing}; found {list(table.columns)}")
    return table
