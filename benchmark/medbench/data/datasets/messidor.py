"""Messidor-2 fundus photographs (ADCIS) with the adjudicated DR grades of Krause et al. 2018.

Layouts:
- ``official``: the ADCIS images (``IMAGES/`` or any folder below the root, ``.png``/``.JPG``/
  ``.tif``) and the grades table ``messidor_data.csv`` (Kaggle/Google re-share: ``image_id,
  adjudicated_dr_grade, adjudicated_dme, adjudicated_gradable``).
- ``mirror``: ``images/<stem>.jpg`` (512x512, already cropped to the fundus disc) and
  ``messidor2.csv`` (``image, source_name, dr_grade, dme, gradable``).

Case ids are the original file stems, so both layouts give the same ids. Only gradable images
are used. Every image is cropped to the bounding square of the fundus disc before resizing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medbench.data.datasets.base import DATASETS, Located, RawDataset, read_csv, read_image
from medbench.errors import DataNotFoundError

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def crop_to_fundus(image: np.ndarray, *, threshold: int = 10) -> np.ndarray:
    """Crop an ``(H, W, 3)`` fundus photograph to the square around the bright disc.

    The disc is the set of pixels brighter than ``threshold`` in the mean over channels; the
    crop is its bounding box padded with black to a square, so the disc is never distorted.
    """
    bright = image.mean(axis=2) > threshold
    rows, cols = np.flatnonzero(bright.any(axis=1)), np.flatnonzero(bright.any(axis=0))
    if rows.size == 0:
        return image
    crop = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape[:2]
    side = max(h, w)
    out = np.zeros((side, side, image.shape[2]), image.dtype)
    top, left = (side - h) // 2, (side - w) // 2
    out[top : top + h, left : left + w] = crop
    return out


class Messidor2(RawDataset):
    name = "messidor2"
    title = "Messidor-2 fundus photographs, adjudicated grades (Krause et al. 2018)"
    mirror_dir = "messidor2"
    obtain = (
        "Messidor-2 images need registration with ADCIS (https://www.adcis.net/en/third-party/"
        "messidor2/); the adjudicated grades are messidor_data.csv from "
        "https://www.kaggle.com/datasets/google-brain/messidor2-dr-grades."
    )
    licence = "ADCIS terms (research use, registration); grades: cite Krause et al. 2018"
    expected = {
        "official": "messidor_data.csv and the ADCIS image files named in it",
        "mirror": "images/<stem>.jpg and messidor2.csv",
    }

    def detect(self, root: Path) -> str | None:
        if (root / "messidor2.csv").is_file() and (root / "images").is_dir():
            return "mirror"
        if (root / "messidor_data.csv").is_file():
            return "official"
        return None

    def cases(self, loc: Located) -> pd.DataFrame:
        if loc.layout == "mirror":
            table = read_csv(
                loc.path("messidor2.csv"),
                loc,
                columns=["image", "source_name", "dr_grade", "gradable"],
            )
            table["file"] = table["image"]
        else:
            table = read_csv(
                loc.path("messidor_data.csv"),
                loc,
                columns=["image_id", "adjudicated_dr_grade", "adjudicated_gradable"],
            ).rename(
                columns={
                    "image_id": "source_name",
                    "adjudicated_dr_grade": "dr_grade",
                    "adjudicated_gradable": "gradable",
                }
            )
            table["file"] = table["source_name"]
        table = table[table["gradable"].astype(float) == 1].copy()
        table["case_id"] = [Path(n).stem for n in table["source_name"]]
        table["dr_grade"] = table["dr_grade"].astype(float).astype(int).astype(str)
        return table.set_index("case_id")[["file", "dr_grade"]]

    def _find(self, loc: Located, file: str) -> Path:
        if loc.layout == "mirror":
            return loc.path(f"images/{file}")
        if "files" not in loc.cache:
            # ADCIS ships the images in sub-folders; names differ in case between releases.
            loc.cache["files"] = {
                p.name.lower(): p
                for p in loc.root.rglob("*")
                if p.suffix.lower() in _IMAGE_SUFFIXES
            }
        found = loc.cache["files"].get(file.lower())
        if found is None:
            raise DataNotFoundError(f"missing Messidor-2 image {file} under {loc.root}")
        return found

    def image(self, loc: Located, case_id: str) -> np.ndarray:
        file = self._table(loc).loc[case_id, "file"]
        return crop_to_fundus(read_image(self._find(loc, file), loc, mode="RGB"))

    def _table(self, loc: Located) -> pd.DataFrame:
        if "table" not in loc.cache:
            loc.cache["table"] = self.cases(loc)
        return loc.cache["table"]

    def target(self, loc: Located, case_id: str, target: str) -> object:
        grade = int(self._table(loc).loc[case_id, "dr_grade"])
        if target == "grade":
            return grade
        if target == "referable":
            return int(grade >= 2)  # referable DR: moderate or worse (Gulshan et al. 2016)
        raise KeyError(target)


DATASETS.add(Messidor2.name, Messidor2())
