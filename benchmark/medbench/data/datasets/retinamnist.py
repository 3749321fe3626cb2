"""RetinaMNIST (MedMNIST v2, from DeepDRiD): 28x28 RGB fundus images, 5 grades.

The official file ``retinamnist.npz`` (Zenodo) holds the official train/val/test split; the
mirror's copy is byte-identical. Case ids are ``<split>-<index>`` in the file's order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medbench.data.datasets.base import DATASETS, Download, Located, RawDataset
from medbench.errors import DataError, DataNotFoundError

FILE = "retinamnist.npz"
SPLIT_KEYS = {"train": "train", "val": "val", "test": "test"}


class RetinaMNIST(RawDataset):
    name = "retinamnist"
    title = "RetinaMNIST (MedMNIST v2)"
    mirror_dir = "retinamnist"
    obtain = "medbench downloads retinamnist.npz from Zenodo (MedMNIST v2, CC BY 4.0)."
    licence = "CC BY 4.0"
    expected = {"official": FILE, "mirror": FILE}
    downloads = (
        Download(
            url="https://zenodo.org/records/10519652/files/retinamnist.npz?download=1",
            filename=FILE,
            md5="bd4c0672f1bba3e3a89f0e4e876791e4",
        ),
    )

    def detect(self, root: Path) -> str | None:
        return "official" if (root / FILE).is_file() else None

    def _load(self, loc: Located) -> dict[str, np.ndarray]:
        if "arrays" not in loc.cache:
            path = loc.path(FILE)
            if not path.is_file():
                raise DataNotFoundError(f"missing file {path}")
            loc.note_read(path)
            try:
                with np.load(path) as data:
                    arrays = {k: data[k] for k in data.files}
            except (OSError, ValueError) as exc:
                raise DataError(f"cannot read {path}: {exc}") from None
            for split in SPLIT_KEYS:
                for part in ("images", "labels"):
                    if f"{split}_{part}" not in arrays:
                        raise DataError(f"{path} lacks the array {split}_{part}")
            loc.cache["arrays"] = arrays
        return loc.cache["arrays"]

    def cases(self, loc: Located) -> pd.DataFrame:
        arrays = self._load(loc)
        ids = [f"{s}-{i:04d}" for s in SPLIT_KEYS for i in range(len(arrays[f"{s}_labels"]))]
        return pd.DataFrame({"case_id": ids}).set_index("case_id")

    def _index(self, case_id: str) -> tuple[str, int]:
        split, index = case_id.split("-")
        return split, int(index)

    def image(self, loc: Located, case_id: str) -> np.ndarray:
        split, i = self._index(case_id)
        return np.asarray(self._load(loc)[f"{split}_images"][i], np.uint8)

    def target(self, loc: Located, case_id: str, target: str) -> object:
        if target != "grade":
            raise KeyError(target)
        split, i = self._index(case_id)
        return int(self._load(loc)[f"{split}_labels"][i].ravel()[0])


DATASETS.add(RetinaMNIST.name, RetinaMNIST())
