"""The worst cases of a run as one PNG: image, truth outline (green), prediction outline (magenta).

The runner draws it right after scoring and stores it beside the record (its SHA-256, the split
and the case ids shown are in the record); ``medbench leaderboard`` shows the leader's. Records
stay image-free, so the leaderboard keeps reading records only.

The cases come from the test split by default. A published picture of test images with their
truth outlines gives away test labels, which a competition with hidden test labels must not do
(``medbench run --gallery-split val``): then the worst cases are chosen among the run's
validation predictions and drawn with the validation truth.

Drawn with Pillow (already loaded for reading images): each case is scaled to a ``TILE``-pixel
tile first (image bilinear, masks and label maps nearest) and the outlines are found at that
size, so they stay one visible pixel wide on images of any size. Matplotlib would cost about
half a second per segmentation run to import and draw the same thing.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

N_WORST = 4
TILE = 200  # pixels on the longer side of each case
_CLASS_COLOURS = ((25, 230, 25), (25, 150, 255), (255, 205, 0))
_PREDICTION = (255, 0, 255)
_TEXT = (20, 20, 20)
SPLIT_WORDS = {"test": "test", "val": "validation"}


def boundaries(labels: np.ndarray) -> np.ndarray:
    """Inner boundaries of a mask or a label map: the labelled pixels (> 0) that have a
    4-neighbour with another label (the image's edge does not count)."""
    padded = np.pad(labels, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    edge = np.zeros(labels.shape, bool)
    for shifted in (padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]):
        edge |= shifted != centre
    return edge & (centre > 0)


def _scaled(array: np.ndarray, size: tuple[int, int], resample: int) -> np.ndarray:
    mode = "I" if array.dtype.kind in "iu" and array.max(initial=0) > 255 else "L"
    image = Image.fromarray(array.astype(np.int32 if mode == "I" else np.uint8), mode=mode)
    return np.asarray(image.resize(size, resample))


def _tile(
    image: np.ndarray, truth: np.ndarray, pred: np.ndarray, *, show_image: bool = True
) -> np.ndarray:
    """``(h, w, 3)`` uint8: the image with truth outlines per class and prediction outlines
    (on black without ``show_image``: for data sets whose images may not be redistributed).

    ``truth``/``pred`` are ``(C, H, W)`` bool masks or ``(H, W)`` label maps (object borders).
    """
    h, w = image.shape[:2]
    scale = TILE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    grey = image[..., 0] if image.shape[2] == 1 else None
    if grey is not None:
        rgb = np.repeat(_scaled(grey, size, Image.BILINEAR)[..., None], 3, axis=2)
    else:
        rgb = np.asarray(
            Image.fromarray(image[..., :3].astype(np.uint8)).resize(size, Image.BILINEAR)
        )
    rgb = rgb.copy() if show_image else np.zeros_like(rgb)
    if truth.ndim == 2:
        truth, pred = truth[None], pred[None]
    for c in range(truth.shape[0]):
        rgb[boundaries(_scaled(truth[c], size, Image.NEAREST))] = _CLASS_COLOURS[c % 3]
    for c in range(pred.shape[0]):
        rgb[boundaries(_scaled(pred[c], size, Image.NEAREST))] = _PREDICTION
    return rgb


def worst_indices(scores: np.ndarray, *, higher_is_better: bool) -> np.ndarray:
    """Indices of the ``N_WORST`` worst per-case ``scores``, worst first (NaN cases skipped;
    ties in case order)."""
    scores = np.asarray(scores, np.float64)
    defined = np.flatnonzero(~np.isnan(scores))
    order = defined[
        np.argsort(scores[defined] if higher_is_better else -scores[defined], kind="stable")
    ]
    return order[:N_WORST]


def worst_cases_png(
    images,
    truth,
    pred,
    scores: np.ndarray,
    case_ids,
    *,
    metric: str,
    higher_is_better: bool,
    split: str = "test",
    show_images: bool = True,
) -> bytes | None:
    """PNG of the ``N_WORST`` cases of ``split`` with the worst per-case ``scores`` (NaN cases
    skipped; see :func:`worst_indices`); None when no case is defined. ``show_images=False``
    draws the outlines only (the data set's terms forbid redistributing its images)."""
    scores = np.asarray(scores, np.float64)
    worst = worst_indices(scores, higher_is_better=higher_is_better)
    if worst.size == 0:
        return None
    tiles = [
        _tile(
            np.asarray(images[i]), np.asarray(truth[i]), np.asarray(pred[i]), show_image=show_images
        )
        for i in worst
    ]
    font = ImageFont.load_default(size=12)
    pad, title_h, caption_h = 10, 24, 34
    width = pad + sum(t.shape[1] + pad for t in tiles)
    height = title_h + caption_h + max(t.shape[0] for t in tiles) + pad
    canvas = Image.new("RGB", (max(width, 560), height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text(
        (pad, 5),
        f"worst {SPLIT_WORDS.get(split, split)} cases: truth (green/blue/yellow per class), "
        "prediction (magenta)" + ("" if show_images else "; outlines only (image not shown)"),
        fill=_TEXT,
        font=font,
    )
    x = pad
    for tile, i in zip(tiles, worst, strict=True):
        name = case_ids[i] if len(case_ids[i]) <= 24 else case_ids[i][:22] + "…"
        draw.text((x, title_h), f"{name}\n{metric} {scores[i]:.3f}", fill=_TEXT, font=font)
        canvas.paste(Image.fromarray(tile), (x, title_h + caption_h))
        x += tile.shape[1] + pad
    buffer = io.BytesIO()
    canvas.save(buffer, format="png", optimize=False)
    return buffer.getvalue()
