"""Readers for every raw data set medbench knows, registered in :data:`DATASETS`."""

from medbench.data.datasets import ctc, dsb, isbi, jsrt, medmnist, messidor, tb, toy  # noqa: F401
from medbench.data.datasets.base import DATASETS, Download, Located, RawDataset

__all__ = ["DATASETS", "Download", "Located", "RawDataset"]
