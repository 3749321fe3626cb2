"""Cell Tracking Challenge 2-D sequences used in the U-Net paper's cell tables.

Layout ``official`` (the challenge's training archive, e.g. ``PhC-C2DH-U373.zip`` unzipped):
``<name>/01/t###.tif`` images and ``<name>/01_GT/SEG/man_seg###.tif`` instance masks, likewise
for sequence ``02``. Only frames with a SEG mask are cases; case ids are ``<seq>-t###``.
16-bit images are min-max rescaled to 8 bits per frame.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.data.datasets.base import DATASETS, Located, RawDataset, read_tiff, rescale_to_uint8
from medbench.errors import DataError, DataNotFoundError

_SEG = re.compile(r"^man_seg(\d+)\.tif$")


class CellTrackingChallenge(RawDataset):
    def __init__(self, name: str, archive: str, title: str) -> None:
        self.name = name
        self.archive = archive
        self.title = title
        self.mirror_dir = archive
        self.obtain = (
            f"Download {archive}.zip (training data) from "
            "https://celltrackingchallenge.net/2d-datasets/ and unzip it."
        )
        self.licence = "Cell Tracking Challenge terms; cite Ulman et al. 2017 and Maška et al. 2023"
        self.expected = {
            "official": f"{archive}/01/t###.tif, {archive}/01_GT/SEG/man_seg###.tif (and 02)"
        }

    def _base(self, root: Path) -> Path:
        return root / self.archive if (root / self.archive).is_dir() else root

    def detect(self, root: Path) -> str | None:
        base = self._base(root)
        return "official" if (base / "01_GT" / "SEG").is_dir() else None

    def cases(self, loc: Located) -> pd.DataFrame:
        base = self._base(loc.root)
        rows = []
        for seq in ("01", "02"):
            for p in sorted((base / f"{seq}_GT" / "SEG").glob("man_seg*.tif")):
                m = _SEG.match(p.name)
                if m:
                    rows.append({"case_id": f"{seq}-t{m.group(1)}", "sequence": seq})
        if not rows:
            raise DataNotFoundError(f"no man_seg*.tif under {base}/01_GT/SEG or 02_GT/SEG")
        return pd.DataFrame(rows).set_index("case_id")

    def image(self, loc: Located, case_id: str) -> np.ndarray:
        seq, frame = case_id.split("-t")
        image = read_tiff(self._base(loc.root) / seq / f"t{frame}.tif", loc)
        if image.ndim == 3:
            image = image[..., 0] if image.shape[-1] in (3, 4) else image[0]
        if image.dtype != np.uint8:
            image = rescale_to_uint8(image)
        return image[:, :, None]

    def target(self, loc: Located, case_id: str, target: str) -> object:
        if target != "instances":
            raise KeyError(target)
        seq, frame = case_id.split("-t")
        labels = read_tiff(self._base(loc.root) / f"{seq}_GT" / "SEG" / f"man_seg{frame}.tif", loc)
        if labels.ndim != 2:
            raise DataError(f"SEG mask {case_id} has shape {labels.shape}; expected 2-D")
        return labels.astype(np.uint16)


for _ds in (
    CellTrackingChallenge(
        "ctc-u373", "PhC-C2DH-U373", "CTC PhC-C2DH-U373 (glioblastoma, phase contrast)"
    ),
    CellTrackingChallenge("ctc-hela", "DIC-C2DH-HeLa", "CTC DIC-C2DH-HeLa (HeLa cells, DIC)"),
):
    DATASETS.add(_ds.name, _ds)
