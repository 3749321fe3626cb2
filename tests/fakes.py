"""Small fake data sets in the mirror's layout, shared by tests (importable: pytest puts
``tests/`` on ``sys.path`` for its root conftest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def fake_isbi_mirror(root: Path, *, size: int = 32, seed: int = 3) -> Path:
    """Write ``root/isbi2012/train/{image,label}/{0..29}.png``: random grey slices and 0/255
    labels of ``size`` x ``size``; ``seed`` picks the pixels. Returns ``root``."""
    rng = np.random.default_rng(seed)
    for which in ("image", "label"):
        folder = root / "isbi2012" / "train" / which
        folder.mkdir(parents=True)
        for i in range(30):
            if which == "image":
                values = rng.integers(0, 256, (size, size))
            else:
                values = rng.choice([0, 255], (size, size))
            Image.fromarray(values.astype(np.uint8)).save(folder / f"{i}.png")
    return root


TB_FOLDERS = {"CHNCXR": "ChinaSet_AllFiles/CXR_png", "MCUCXR": "MontgomerySet/CXR_png"}


def fake_tb_tree(root: Path, names: list[str], *, size: tuple[int, int] = (32, 40)) -> Path:
    """Stand-in NLM TB archives: ``root/ChinaSet_AllFiles/CXR_png/CHNCXR_####_<label>.png`` and
    ``root/MontgomerySet/CXR_png/MCUCXR_####_<label>.png``, random grey images. Returns ``root``."""
    rng = np.random.default_rng(2)
    for name in names:
        grey = rng.integers(0, 256, size=size, dtype=np.uint8)
        path = root / TB_FOLDERS[name[:6]] / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grey).save(path)
    return root
