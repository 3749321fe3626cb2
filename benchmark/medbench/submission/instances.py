"""Instance segmentation as two semantic channels, and back to a label map.

A network cannot output "one label per object" directly, so the standard trainer learns two
channels per pixel and turns them into objects afterwards:

- channel 0, **foreground**: the pixel belongs to some object;
- channel 1, **boundary**: the pixel lies in a band ``width`` pixels wide (default 2) just
  inside an object's border, that is within ``width`` pixels (chessboard distance) of the
  background or of another object.

Touching objects are then separated by their boundary bands: foreground minus boundary leaves
one seed per object, and a watershed (``skimage.segmentation.watershed``) restricted to the
foreground grows every seed back over its band. Foreground components that hold no seed
(objects thinner than the band) become objects of their own, so nothing predicted as
foreground is dropped.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.segmentation import relabel_sequential, watershed

BOUNDARY_WIDTH = 2


def instance_targets(labels: np.ndarray, *, width: int = BOUNDARY_WIDTH) -> np.ndarray:
    """``(H, W)`` integer label map (0 = background) -> ``(2, H, W)`` bool (foreground, boundary)."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"a label map must be 2-D (H, W); got shape {labels.shape}")
    foreground = labels > 0
    size = 2 * width + 1
    # A pixel is on the band when its (2w+1)^2 neighbourhood holds another label; "nearest" keeps
    # the image border from counting as background (objects cut by a crop have no edge there).
    highest = ndimage.maximum_filter(labels, size=size, mode="nearest")
    lowest = ndimage.minimum_filter(labels, size=size, mode="nearest")
    boundary = foreground & ((highest != labels) | (lowest != labels))
    return np.stack([foreground, boundary])


def instances_from_probabilities(
    foreground: np.ndarray,
    boundary: np.ndarray,
    *,
    threshold: float = 0.5,
    min_seed_size: int = 4,
) -> np.ndarray:
    """Foreground and boundary probabilities, each ``(H, W)`` -> ``(H, W)`` int32 label map.

    Seeds are the 4-connected components of ``foreground >= t and boundary < t`` with at least
    ``min_seed_size`` pixels (smaller ones are noise and get flooded by their neighbours); the
    watershed floods the foreground mask from them in the order of the boundary probability.
    Labels are consecutive from 1.
    """
    foreground = np.asarray(foreground, np.float32)
    boundary = np.asarray(boundary, np.float32)
    if foreground.shape != boundary.shape or foreground.ndim != 2:
        raise ValueError(
            f"foreground and boundary must be two (H, W) maps of one shape; got {foreground.shape} "
            f"and {boundary.shape}"
        )
    mask = foreground >= threshold
    if not mask.any():
        return np.zeros(mask.shape, np.int32)
    seeds, n_seeds = ndimage.label(mask & (boundary < threshold))
    if n_seeds and min_seed_size > 1:
        sizes = np.bincount(seeds.ravel(), minlength=n_seeds + 1)
        small = sizes < min_seed_size
        small[0] = False
        seeds[small[seeds]] = 0
    labels = (
        watershed(boundary, markers=seeds, mask=mask)
        if seeds.any()
        else np.zeros(mask.shape, np.int64)
    )
    unclaimed = mask & (labels == 0)
    if unclaimed.any():
        extra, _ = ndimage.label(unclaimed)
        labels = np.where(extra > 0, extra + labels.max(), labels)
    return relabel_sequential(labels.astype(np.int32))[0].astype(np.int32)
