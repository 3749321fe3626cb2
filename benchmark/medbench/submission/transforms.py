"""Image helpers of the standard trainer: normalisation, padding, random crops, seeded augmentation.

Images stay ``uint8`` until they reach the device (a quarter of the bytes of float32 to copy);
there they become ``(x / 255 - 0.5) / 0.25`` per channel, see :func:`normalise`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

MEAN = 0.5
STD = 0.25


def normalise(images: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` uint8 -> float32 ``(x / 255 - MEAN) / STD``; float input is returned as is."""
    if images.dtype != torch.uint8:
        return images
    return images.float().mul_(1.0 / (255.0 * STD)).sub_(MEAN / STD)


def pad_amounts(size: int, multiple: int) -> int:
    return (-size) % multiple


def pad_to(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Zero-pad the first two axes of ``array`` (``(H, W, ...)``) at the bottom and right."""
    h, w = array.shape[:2]
    if h >= height and w >= width:
        return array
    pad = [(0, max(0, height - h)), (0, max(0, width - w))] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pad)


def pad_to_multiple(array: np.ndarray, multiple: int) -> np.ndarray:
    """Zero-pad ``(H, W, ...)`` at the bottom and right to multiples of ``multiple``."""
    h, w = array.shape[:2]
    return pad_to(array, h + pad_amounts(h, multiple), w + pad_amounts(w, multiple))


def random_crop(
    image: np.ndarray, target: np.ndarray | None, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    """A random ``size`` x ``size`` window of ``image`` ``(H, W, C)`` and ``target`` ``(H, W, ...)``.

    An axis shorter than ``size`` is zero-padded (bottom/right) to ``size`` first.
    """
    image = pad_to(image, size, size)
    if target is not None:
        target = pad_to(target, size, size)
    h, w = image.shape[:2]
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    window = (slice(top, top + size), slice(left, left + size))
    return image[window], (None if target is None else target[window])


def _children(transform: Any) -> list[Any]:
    return list(getattr(transform, "transforms", None) or [])


def reseed(transform: Any, seed: int) -> None:
    """Seed every node of an albumentations pipeline from ``seed``, each with its own stream.

    ``Compose.set_random_seed`` hands the same seed to every child, which makes e.g. a
    horizontal and a vertical flip with ``p=0.5`` always fire together; here the children get
    streams derived from ``(seed, position)``.
    """
    stack = [transform]
    position = 0
    while stack:
        node = stack.pop()
        derived = int(np.random.SeedSequence([seed, position]).generate_state(1)[0])
        if hasattr(node, "set_random_seed"):
            node.set_random_seed(derived)
        position += 1
        stack.extend(reversed(_children(node)))
