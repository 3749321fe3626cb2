"""Saved predictions: each run's validated test and val predictions, compressed, beside its record.

``<submission>.seed<k>.predictions.npz`` holds, per split, the real case ids and the predictions
exactly as they were scored (binary ``(n,)`` and multi-class ``(n, K)`` probabilities, masks
``(n, C, H, W)`` booleans, instance label maps as a ragged buffer). The record names the file and
its SHA-256; ``medbench verify`` re-scores it against the local answers. Ensembles and re-scoring
build on these files, never on a re-run.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from medbench.data.arrays import Ragged
from medbench.errors import RecordError

SplitPredictions = tuple[Sequence[str], np.ndarray | list[np.ndarray]]
SUFFIX = ".predictions.npz"


def predictions_path(record_file: str | Path) -> Path:
    """``dummy.seed0.json`` -> ``dummy.seed0.predictions.npz`` (same folder)."""
    record_file = Path(record_file)
    return record_file.with_name(record_file.name.removesuffix(".json") + SUFFIX)


def _compact(label_map: np.ndarray) -> np.ndarray:
    top = int(label_map.max()) if label_map.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return label_map.astype(dtype)
    return label_map.astype(np.int64)


def encode(splits: Mapping[str, SplitPredictions]) -> bytes:
    """The NPZ bytes of ``{split: (case ids, predictions)}``."""
    arrays: dict[str, np.ndarray] = {}
    for split, (ids, preds) in splits.items():
        arrays[f"{split}.case_ids"] = np.array(list(ids), dtype=str)
        if isinstance(preds, list):
            maps = [_compact(np.asarray(p)) for p in preds]
            dtype = max(
                (m.dtype for m in maps), key=lambda d: d.itemsize, default=np.dtype(np.uint8)
            )
            ragged = Ragged.from_arrays([m.astype(dtype) for m in maps])
            arrays[f"{split}.data"], arrays[f"{split}.index"] = ragged.data, ragged.index
        else:
            arrays[f"{split}.values"] = np.asarray(preds)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def decode(path: str | Path) -> dict[str, tuple[tuple[str, ...], np.ndarray | list[np.ndarray]]]:
    """Read what :func:`encode` wrote: ``{split: (case ids, predictions)}``."""
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {}
            for name in data.files:
                split, _, field = name.partition(".")
                if field != "case_ids":
                    continue
                ids = tuple(str(c) for c in data[name])
                if f"{split}.values" in data.files:
                    preds = data[f"{split}.values"]
                else:
                    ragged = Ragged(data[f"{split}.data"], data[f"{split}.index"])
                    preds = [np.asarray(ragged[i]) for i in range(len(ragged))]
                out[split] = (ids, preds)
            return out
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise RecordError(f"cannot read saved predictions {path}: {exc}") from None
