"""ISBI 2012 EM segmentation challenge (Cardona et al. 2010; Arganda-Carreras et al. 2015).

Layouts:
- ``official``: ``train-volume.tif`` and ``train-labels.tif`` (30-page TIFF stacks).
- ``mirror``: ``train/image/{0..29}.png`` and ``train/label/{0..29}.png``.

Labels are 255 for cell interior and 0 for membrane; the task predicts the membrane. The
official test volume has no public labels, so medbench's test split is slices 25-29 of the
training volume.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medbench.data.datasets.base import DATASETS, Located, RawDataset, read_image, read_tiff
from medbench.errors import DataError

N_SLICES = 30


def read_tiff_stack(path: Path, loc: Located | None = None) -> np.ndarray:
    """A multipage TIFF as a ``(pages, H, W)`` array (a single page is one page)."""
    stack = read_tiff(path, loc)
    return stack[None] if stack.ndim == 2 else stack


def case_id(index: int) -> str:
    return f"slice-{index:02d}"


class ISBI2012(RawDataset):
    name = "isbi2012"
    title = "ISBI 2012 EM segmentation (Drosophila ssTEM)"
    mirror_dir = "isbi2012"
    obtain = (
        "Download train-volume.tif and train-labels.tif from the ISBI 2012 challenge "
        "(https://imagej.net/events/isbi-2012-segmentation-challenge)."
    )
    licence = "challenge data; cite Cardona et al. 2010 and Arganda-Carreras et al. 2015"
    expected = {
        "official": "train-volume.tif, train-labels.tif",
        "mirror": "train/image/{0..29}.png, train/label/{0..29}.png",
    }

    def detect(self, root: Path) -> str | None:
        if (root / "train-volume.tif").is_file():
            return "official"
        if (root / "train" / "image").is_dir():
            return "mirror"
        return None

    def cases(self, loc: Located) -> pd.DataFrame:
        n = len(self._stack(loc, "volume")) if loc.layout == "official" else N_SLICES
        return pd.DataFrame({"case_id": [case_id(i) for i in range(n)]}).set_index("case_id")

    def _stack(self, loc: Located, which: str) -> np.ndarray:
        if which not in loc.cache:
            loc.cache[which] = read_tiff_stack(loc.path(f"train-{which}.tif"), loc)
        return loc.cache[which]

    def _slice(self, loc: Located, which: str, case: str) -> np.ndarray:
        index = int(case.split("-")[1])
        if loc.layout == "official":
            stack = self._stack(loc, "volume" if which == "image" else "labels")
            if index >= len(stack):
                raise DataError(f"{case} missing: the stack has {len(stack)} slices")
            return np.asarray(stack[index])
        return read_image(loc.path(f"train/{which}/{index}.png"), loc, mode="L")

    def image(self, loc: Located, case_id: str) -> np.ndarray:
        image = self._slice(loc, "image", case_id)
        if image.dtype != np.uint8:
            raise DataError(f"ISBI slice {case_id} has dtype {image.dtype}; expected uint8")
        return image[:, :, None]

    def target(self, loc: Located, case_id: str, target: str) -> object:
        if target != "membranes":
            raise KeyError(target)
        label = self._slice(loc, "label", case_id)
        return (label == 0)[None]  # 0 = membrane in the source


DATASETS.add(ISBI2012.name, ISBI2012())
