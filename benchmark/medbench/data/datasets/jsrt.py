"""JSRT chest radiographs (Shiraishi et al. 2000) with SCR anatomy masks (van Ginneken et al. 2006).

Layouts:
- ``mirror``: ``images/<NAME>.png`` (512x512 8-bit), ``masks/<structure>/<NAME>.png``
  (1024x1024, 1-bit), ``jsrt.csv`` (name, nodule, scr_fold).
- ``official``: ``All247images/<NAME>.IMG`` (2048x2048, 12-bit big-endian raw, no header) and
  the SCR archive's ``.../masks/<structure>/<NAME>.gif`` (1024x1024).

In SCR, left and right are the patient's sides (``left_lung`` lies on the image's right).
Clavicles overlap the lungs, so the anatomy target is a stack of binary masks (multi-label).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from medbench.data.datasets.base import (
    DATASETS,
    Located,
    RawDataset,
    read_csv,
    read_image,
)
from medbench.errors import DataError, DataNotFoundError

STRUCTURES = {
    "lungs": ("left_lung", "right_lung"),
    "heart": ("heart",),
    "clavicles": ("left_clavicle", "right_clavicle"),
}
IMG_SIZE = 2048
_NAME = re.compile(r"^JPC(LN|NN)\d{3}$")


def read_jsrt_img(path: Path) -> np.ndarray:
    """Read a JSRT ``.IMG`` file: 2048x2048 12-bit big-endian, no header -> (H, W, 1) uint8.

    JSRT stores optical density-like values (high = dark on film), so the 12-bit values are
    inverted to the usual radiograph display (bone bright) and scaled to 8 bits.
    """
    raw = np.fromfile(path, dtype=">u2")
    if raw.size != IMG_SIZE * IMG_SIZE:
        raise DataError(
            f"{path} is not a JSRT .IMG file: expected {IMG_SIZE * IMG_SIZE * 2} bytes "
            f"(2048x2048, 16-bit), got {raw.size * 2}"
        )
    values = np.minimum(raw.reshape(IMG_SIZE, IMG_SIZE), 4095).astype(np.uint32)
    return (255 - (values * 255 + 2047) // 4095).astype(np.uint8)[:, :, None]


class JSRT(RawDataset):
    name = "jsrt-scr"
    title = "JSRT chest radiographs + SCR masks"
    mirror_dir = "jsrt-scr"
    obtain = (
        "JSRT images need registration at http://db.jsrt.or.jp/eng.php (All247images); "
        "SCR masks at https://www.isi.uu.nl/Research/Databases/SCR/ (registration required)."
    )
    licence = "research and education use only; redistribution prohibited"
    images_redistributable = False
    expected = {
        "official": "All247images/<NAME>.IMG and the SCR masks .../masks/<structure>/<NAME>.gif",
        "mirror": "images/<NAME>.png, masks/<structure>/<NAME>.png, jsrt.csv",
    }

    def detect(self, root: Path) -> str | None:
        if (root / "jsrt.csv").is_file() and (root / "images").is_dir():
            return "mirror"
        if (root / "All247images").is_dir() or any(root.glob("*.IMG")):
            return "official"
        return None

    def _img_dir(self, loc: Located) -> Path:
        return loc.root / "All247images" if (loc.root / "All247images").is_dir() else loc.root

    def cases(self, loc: Located) -> pd.DataFrame:
        if loc.layout == "mirror":
            table = read_csv(loc.path("jsrt.csv"), loc, columns=["name", "nodule", "scr_fold"])
            table = table.rename(columns={"name": "case_id"})
        else:
            names = sorted(p.stem for p in self._img_dir(loc).glob("*.IMG"))
            table = pd.DataFrame({"case_id": names})
            table["nodule"] = [str(int(n.startswith("JPCLN"))) for n in names]
            # SCR fold 1 = odd-numbered images, fold 2 = even (van Ginneken et al. 2006).
            table["scr_fold"] = [str(1 if int(n[-3:]) % 2 else 2) for n in names]
        bad = [n for n in table["case_id"] if not _NAME.match(n)]
        if bad:
            raise DataError(f"unexpected JSRT image names {bad[:5]} in {loc.root}")
        return table.set_index("case_id")

    def image(self, loc: Located, case_id: str) -> np.ndarray:
        if loc.layout == "mirror":
            return read_image(loc.path(f"images/{case_id}.png"), loc, mode="L")[:, :, None]
        path = self._img_dir(loc) / f"{case_id}.IMG"
        if not path.is_file():
            raise DataNotFoundError(f"missing file {path}")
        loc.note_read(path)
        return read_jsrt_img(path)

    def _mask_file(self, loc: Located, structure: str, case_id: str) -> Path:
        if loc.layout == "mirror":
            return loc.path(f"masks/{structure}/{case_id}.png")
        found = list(loc.root.glob(f"**/masks/{structure}/{case_id}.gif"))
        if not found:
            raise DataNotFoundError(
                f"missing SCR mask {structure}/{case_id}.gif under {loc.root} "
                "(the SCR masks pair with each JSRT image; every image needs all five)"
            )
        return found[0]

    def target(self, loc: Located, case_id: str, target: str) -> object:
        if target == "nodule":
            return int(case_id.startswith("JPCLN"))
        if target != "anatomy":
            raise KeyError(target)
        channels = []
        first: tuple[Path, tuple[int, ...]] | None = None  # every mask must match the first
        for parts in STRUCTURES.values():
            union = None
            for structure in parts:
                path = self._mask_file(loc, structure, case_id)
                # By grey level, not palette index: a GIF's palette may put white at index 0.
                mask = read_image(path, loc, mode="L") > 0
                if first is None:
                    first = (path, mask.shape)
                elif mask.shape != first[1]:
                    raise DataError(
                        f"masks of {case_id} do not pair: {path} is {mask.shape[1]}x{mask.shape[0]}"
                        f" but {first[0]} is {first[1][1]}x{first[1][0]}"
                    )
                union = mask if union is None else union | mask
            channels.append(union)
        return np.stack(channels)


DATASETS.add(JSRT.name, JSRT())
