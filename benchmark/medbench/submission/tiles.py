"""Overlap-tile inference: ``[train] tile`` and ``tile_overlap`` of the standard trainer.

Ronneberger et al. (2015) predict images of any size tile by tile, each tile seeing a border of
context around the part it predicts. Here the model sees ``tile x tile`` windows of the (padded)
image; along each axis the windows are spaced evenly from edge to edge, as few as keep every
neighbouring pair overlapping by at least ``tile_overlap`` pixels (so the last window ends at
the image's edge and none reaches past it). Each window's probabilities are blended into the
image with a weight that rises from near 0 to 1 as a raised cosine (a half Hann window) over
the ``tile_overlap`` pixels at each side that has a neighbour (1 elsewhere, and at the image's
own edges): a pixel near a window's edge, where that window has the least context and zero
padding distorts its output, takes almost all of its value from the neighbour that sees it
centrally (the edge pixel's weight is about ``(pi / (2 overlap))**2``, 0.0006 at 32 pixels), so the
blend has no seams. An axis no longer than the tile
is one window. A model trained on crops (``image_size``) then predicts native-size images
without resizing and with the context it was trained with.

Blending acts on probabilities (the activated outputs), as test-time flips do; with ``tta`` the
flipped image is tiled. No torch import at module level (tensor methods only).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def window_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Starts of the windows along an axis of ``length``: evenly spaced, first 0, last
    ``length - tile``, neighbours overlapping by ``overlap`` or more; ``[0]`` if it fits."""
    if length <= tile:
        return [0]
    n = math.ceil((length - tile) / (tile - overlap)) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def ramp(size: int, overlap: int, *, before: bool, after: bool) -> list[float]:
    """One axis of a window's blending weight: ``sin(pi / 2 * (i + 0.5) / overlap) ** 2`` at the
    ``i``-th pixel from the start (``before``) and from the end (``after``) for the ``overlap``
    pixels there, 1 elsewhere."""
    weights = [1.0] * size
    for i in range(min(overlap, size)):
        w = math.sin(math.pi / 2 * (i + 0.5) / overlap) ** 2
        if before:
            weights[i] = min(weights[i], w)
        if after:
            weights[size - 1 - i] = min(weights[size - 1 - i], w)
    return weights


def tiled(
    forward: Callable[[torch.Tensor], torch.Tensor], tile: int | None, overlap: int
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``forward`` (``(N, C, H, W)`` images -> ``(N, K, H, W)`` probabilities) applied window by
    window and blended; ``forward`` itself when ``tile`` is None."""
    if tile is None:
        return forward

    def run(images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        ys = window_starts(height, tile, overlap)
        xs = window_starts(width, tile, overlap)
        if len(ys) == len(xs) == 1:
            return forward(images)
        th, tw = min(tile, height), min(tile, width)
        total = weight_sum = None
        for iy, y in enumerate(ys):
            wy = images.new_tensor(ramp(th, overlap, before=iy > 0, after=iy < len(ys) - 1))
            for ix, x in enumerate(xs):
                wx = images.new_tensor(ramp(tw, overlap, before=ix > 0, after=ix < len(xs) - 1))
                weight = (wy[:, None] * wx[None, :]).float()
                probs = forward(images[..., y : y + th, x : x + tw]).float()
                if total is None:
                    total = probs.new_zeros((*probs.shape[:2], height, width))
                    weight_sum = probs.new_zeros((height, width))
                total[..., y : y + th, x : x + tw] += probs * weight
                weight_sum[y : y + th, x : x + tw] += weight
        return total / weight_sum

    return run
