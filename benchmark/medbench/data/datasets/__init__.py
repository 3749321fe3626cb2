"""Readers for every raw data set medbench knows, registered in :data:`DATASETS`.

Every module of this package registers its readers when imported; they are discovered here, so a
new data set is a new module (no list to extend).
"""

import importlib
import pkgutil

from medbench.data.datasets.base import DATASETS, Download, Located, RawDataset

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "base"):
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["DATASETS", "Download", "Located", "RawDataset"]
