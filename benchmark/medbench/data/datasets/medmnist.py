"""The MedMNIST v2 family (Yang et al. 2023, Sci Data): one parameterised reader.

Each member is one official ``<name>.npz`` (Zenodo record 10519652; the mirror's copies are
byte-identical) holding ``{train,val,test}_{images,labels}`` and so the official split. Case ids
are ``<split>-<index>`` in the file's order. A member is a :class:`MedMNIST` instance: its file,
checksum, licence and the targets tasks may ask for (a target maps the file's labels, e.g. to
make BreastMNIST's *malignant* the positive class). Adding a MedMNIST task is one instance here
(if the data set is new), a catalogue entry and its committed split file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.data.datasets.base import DATASETS, Download, Located, RawDataset
from medbench.errors import DataError, DataNotFoundError

SPLIT_KEYS = ("train", "val", "test")
ZENODO = "https://zenodo.org/records/10519652/files/{file}?download=1"


@dataclass(frozen=True)
class Member:
    """One MedMNIST data set: ``targets`` maps a target name to a label map (None: as in the file)."""

    name: str
    title: str
    md5: str
    targets: Mapping[str, Mapping[int, int] | None] = field(default_factory=dict)
    licence: str = "CC BY 4.0"

    @property
    def file(self) -> str:
        return f"{self.name}.npz"


class MedMNIST(RawDataset):
    def __init__(self, member: Member) -> None:
        self.member = member
        self.name = member.name
        self.title = member.title
        self.mirror_dir = member.name
        self.licence = member.licence
        self.obtain = (
            f"medbench downloads {member.file} from Zenodo (MedMNIST v2, {member.licence})."
        )
        self.expected = {"official": member.file, "mirror": member.file}
        self.downloads = (
            Download(url=ZENODO.format(file=member.file), filename=member.file, md5=member.md5),
        )

    def detect(self, root: Path) -> str | None:
        return "official" if (root / self.member.file).is_file() else None

    def _load(self, loc: Located) -> dict[str, np.ndarray]:
        if "arrays" not in loc.cache:
            path = loc.path(self.member.file)
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

    @staticmethod
    def _index(case_id: str) -> tuple[str, int]:
        split, index = case_id.split("-")
        return split, int(index)

    def image(self, loc: Located, case_id: str) -> np.ndarray:
        split, i = self._index(case_id)
        image = np.asarray(self._load(loc)[f"{split}_images"][i], np.uint8)
        return image[..., None] if image.ndim == 2 else image  # grey members: (H, W) -> (H, W, 1)

    def target(self, loc: Located, case_id: str, target: str) -> object:
        if target not in self.member.targets:
            raise KeyError(target)
        split, i = self._index(case_id)
        label = int(self._load(loc)[f"{split}_labels"][i].ravel()[0])
        mapping = self.member.targets[target]
        return label if mapping is None else mapping[label]


MEMBERS = (
    Member(
        "retinamnist",
        "RetinaMNIST (MedMNIST v2, from DeepDRiD)",
        "bd4c0672f1bba3e3a89f0e4e876791e4",
        {"grade": None},
    ),
    Member(
        "pneumoniamnist",
        "PneumoniaMNIST (MedMNIST v2, from Kermany et al. 2018)",
        "28209eda62fecd6e6a2d98b1501bb15f",
        {"pneumonia": None},  # 0 normal, 1 pneumonia
    ),
    Member(
        "breastmnist",
        "BreastMNIST (MedMNIST v2, from Al-Dhabyani et al. 2020)",
        "750601b1f35ba3300ea97c75c52ff8f6",
        # The file's labels: 0 malignant, 1 normal or benign. The task's positive class is
        # malignant, so its target is 1 - label.
        {"malignant": {0: 1, 1: 0}},
    ),
)
for _member in MEMBERS:
    DATASETS.add(_member.name, MedMNIST(_member))
