"""NLM tuberculosis chest X-ray sets: Shenzhen (ChinaSet) and Montgomery County (Jaeger et al. 2014).

Layout ``official``: the unzipped archives, ``ChinaSet_AllFiles/CXR_png/CHNCXR_####_<0|1>.png``
and ``MontgomerySet/CXR_png/MCUCXR_####_<0|1>.png`` (label = the last digit: 1 = TB). Any
folder holding ``CXR_png`` folders with such files is accepted.

The mirror has ``tb-nlm/labels.csv`` only (no images); the case list of the split comes from it.
Images are read as grey and resized to the task's square size (aspect ratio not kept).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medbench.data.datasets.base import (
    DATASETS,
    Located,
    RawDataset,
    read_image,
    rescale_to_uint8,
)
from medbench.errors import DataNotFoundError

SOURCES = {"CHNCXR": "shenzhen", "MCUCXR": "montgomery"}


class NLMTuberculosis(RawDataset):
    name = "tb-nlm"
    title = "NLM Shenzhen + Montgomery tuberculosis chest X-rays"
    mirror_dir = "tb-nlm"
    obtain = (
        "Download ChinaSet_AllFiles.zip and NLM-MontgomeryCXRSet.zip from NLM "
        "(https://lhncbc.nlm.nih.gov/LHC-downloads/downloads.html#tuberculosis-image-data-sets, "
        "free for research) and unzip both into one folder."
    )
    licence = "free for research; cite Jaeger et al. 2014"
    expected = {
        "official": "ChinaSet_AllFiles/CXR_png/CHNCXR_####_<label>.png and "
        "MontgomerySet/CXR_png/MCUCXR_####_<label>.png"
    }

    def _files(self, root: Path) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for folder in [root / "CXR_png", *root.glob("*/CXR_png"), *root.glob("*/*/CXR_png")]:
            for p in folder.glob("*.png"):
                if p.name[:6] in SOURCES:
                    found[p.stem] = p
        return found

    def detect(self, root: Path) -> str | None:
        return "official" if self._files(root) else None

    def absent_note(self, root: Path) -> str | None:
        """Why data that is partly there cannot be used (the mirror has labels only)."""
        if (root / "labels.csv").is_file() and not self._files(root):
            return "labels only (labels.csv), no images"
        return None

    def cases(self, loc: Located) -> pd.DataFrame:
        if "files" not in loc.cache:
            loc.cache["files"] = self._files(loc.root)
        ids = sorted(loc.cache["files"])
        return pd.DataFrame(
            {
                "case_id": ids,
                "source": [SOURCES[i[:6]] for i in ids],
                "tb": [i.rsplit("_", 1)[1] for i in ids],
            }
        ).set_index("case_id")

    def image(self, loc: Located, case_id: str) -> np.ndarray:
        files = loc.cache.get("files") or self._files(loc.root)
        if case_id not in files:
            raise DataNotFoundError(f"missing TB image {case_id}.png under {loc.root}")
        image = read_image(files[case_id], loc)
        if image.dtype != np.uint8:  # a few Montgomery files are 16-bit in some releases
            image = rescale_to_uint8(image)
        if image.ndim == 3:
            image = image[..., :3].mean(axis=2).round().astype(np.uint8)
        return image[:, :, None]

    def target(self, loc: Located, case_id: str, target: str) -> object:
        if target != "tb":
            raise KeyError(target)
        return int(case_id.rsplit("_", 1)[1])


DATASETS.add(NLMTuberculosis.name, NLMTuberculosis())
