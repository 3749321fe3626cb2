"""Array storage for prepared data: plain ``.npy`` files, memory-mapped on read.

Images of one size are one ``(n, H, W, C)`` array. Images of native, differing sizes (DSB 2018,
Cell Tracking Challenge) are stored as a :class:`Ragged` array: one flat buffer plus an index
of offsets and shapes, so they are memory-mappable too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


class Ragged(Sequence):
    """A sequence of arrays of differing shapes (same ndim and dtype) over one flat buffer."""

    def __init__(self, data: np.ndarray, index: np.ndarray) -> None:
        # index rows: (offset, dim0, dim1, ...)
        self.data = data
        self.index = index

    @classmethod
    def from_arrays(cls, arrays: Sequence[np.ndarray]) -> Ragged:
        if not arrays:
            return cls(np.zeros(0, np.uint8), np.zeros((0, 1), np.int64))
        ndim = arrays[0].ndim
        sizes = np.array([a.size for a in arrays], np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        shapes = np.array([a.shape for a in arrays], np.int64).reshape(len(arrays), ndim)
        data = np.concatenate([np.ascontiguousarray(a).ravel() for a in arrays])
        return cls(data, np.column_stack([offsets, shapes]))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        row = self.index[i]
        offset, shape = int(row[0]), tuple(int(s) for s in row[1:])
        return self.data[offset : offset + int(np.prod(shape))].reshape(shape)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(int(s) for s in row[1:]) for row in self.index]


def save_array(folder: Path, name: str, array: np.ndarray | Ragged) -> list[Path]:
    """Save ``array`` as ``name.npy`` (or ``name.data.npy`` + ``name.index.npy``); return files."""
    if isinstance(array, Ragged):
        files = [folder / f"{name}.data.npy", folder / f"{name}.index.npy"]
        np.save(files[0], array.data)
        np.save(files[1], array.index)
        return files
    path = folder / f"{name}.npy"
    np.save(path, np.ascontiguousarray(array))
    return [path]


def array_files(folder: Path, name: str) -> list[Path]:
    """The files :func:`save_array` wrote for ``name`` in ``folder`` (empty if none)."""
    plain = folder / f"{name}.npy"
    if plain.exists():
        return [plain]
    ragged = [folder / f"{name}.data.npy", folder / f"{name}.index.npy"]
    return ragged if ragged[0].exists() else []


def load_array_files(files: Sequence[str | Path]) -> np.ndarray | Ragged:
    """Memory-map what :func:`array_files` lists: one ``.npy``, or a ragged data + index pair."""
    if len(files) == 1:
        return np.load(files[0], mmap_mode="r")
    data, index = files
    return Ragged(np.load(data, mmap_mode="r"), np.load(index))


def load_array(folder: Path, name: str, *, mmap: bool = True) -> np.ndarray | Ragged | None:
    """Load what :func:`save_array` wrote (read-only memory map by default); None if absent."""
    mode = "r" if mmap else None
    plain = folder / f"{name}.npy"
    if plain.exists():
        return np.load(plain, mmap_mode=mode)
    data = folder / f"{name}.data.npy"
    if data.exists():
        return Ragged(np.load(data, mmap_mode=mode), np.load(folder / f"{name}.index.npy"))
    return None
