"""Hand-crafted image features for submissions: multi-scale uniform LBP histograms (Bar et al. 2015's
low-level baseline, Ojala et al. 2002).

Features: each image becomes grey (ITU-R 601 luminance, uint8) and is shrunk with area averaging
so that its longer side is at most ``max_side``; rotation-invariant uniform LBP codes are computed
at several (points, radius) scales; each scale's code histogram is taken over the whole image and
over a 2x2 and a 4x4 grid of cells (a spatial pyramid), each histogram normalised to sum to 1, and
all are concatenated. Used by ``submissions/lbp-svm`` and fused with deep features by
``submissions/deep-features``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np
from skimage.feature import local_binary_pattern

from medbench.errors import SubmissionError


def to_grey(image: np.ndarray, max_side: int) -> np.ndarray:
    """``(H, W[, C])`` integer image -> ``(h, w)`` luminance of the same dtype, longer side at
    most ``max_side``.

    LBP compares neighbours with the centre, so it is meant for integer images: floats would
    turn rounding noise into patterns.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    elif image.ndim == 3:
        grey = image[:, :, 0]
    else:
        grey = image
    if grey.dtype not in (np.uint8, np.uint16):
        raise SubmissionError(f"LBP expects uint8 or uint16 images; got {grey.dtype}")
    h, w = grey.shape
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(grey)


def cell_histograms(codes: np.ndarray, n_bins: int, grids: Sequence[int]) -> np.ndarray:
    """Normalised histograms of integer ``codes`` ``(h, w)`` in each cell of each ``g x g`` grid:
    ``(n_bins * sum(g * g),)``, every cell's histogram summing to 1 (0 for an empty cell)."""
    h, w = codes.shape
    out = []
    for g in grids:
        rows = np.minimum(np.arange(h) * g // h, g - 1)
        cols = np.minimum(np.arange(w) * g // w, g - 1)
        cell = rows[:, None] * g + cols[None, :]
        # One bincount over (cell, code) pairs gives every cell's histogram at once.
        counts = np.bincount((cell * n_bins + codes).ravel(), minlength=g * g * n_bins).reshape(
            g * g, n_bins
        )
        totals = counts.sum(axis=1, keepdims=True)
        out.append((counts / np.maximum(totals, 1)).ravel())
    return np.concatenate(out)


def lbp_features(
    grey: np.ndarray, scales: Sequence[Sequence[int]], grids: Sequence[int]
) -> np.ndarray:
    """Multi-scale uniform-LBP spatial-pyramid histograms of one ``(h, w)`` uint8 image.

    Shape ``(sum over scales of (P + 2) * sum(g * g),)``: uniform LBP with P points has P + 2
    codes (P + 1 uniform patterns and one bin for all others).
    """
    parts = []
    for points, radius in scales:
        codes = local_binary_pattern(grey, int(points), float(radius), method="uniform").astype(
            np.int64
        )
        parts.append(cell_histograms(codes, int(points) + 2, grids))
    return np.concatenate(parts).astype(np.float32)


def lbp_histograms(
    images: Any,
    *,
    scales: Sequence[Sequence[int]] = ((8, 1), (16, 2)),
    grids: Sequence[int] = (1, 2, 4),
    max_side: int = 256,
    n_jobs: int = 0,
) -> np.ndarray:
    """``(n, d)`` float32 LBP features of a sequence of images (``(n, H, W, C)`` array or list).

    skimage's LBP and OpenCV release the GIL, so a pool of ``n_jobs`` threads (0: one per core)
    uses every core without copying the images to other processes.
    """

    def one(i: int) -> np.ndarray:
        return lbp_features(to_grey(images[i], max_side), scales, grids)

    n = len(images)
    if n == 0:
        return np.zeros((0, 0), np.float32)
    jobs = int(n_jobs) or os.cpu_count() or 1
    if jobs == 1 or n < 16:
        return np.stack([one(i) for i in range(n)])
    with ThreadPoolExecutor(jobs) as pool:
        return np.stack(list(pool.map(one, range(n), chunksize=8)))
