"""The worst test cases of a run as one PNG: image, truth outline (green), prediction outline (magenta).

The runner draws it right after scoring, while it holds the test images, and stores it beside the
record (its SHA-256 is in the record); ``medbench leaderboard`` shows the leader's. Records stay
image-free, so the leaderboard keeps reading records only.
"""

from __future__ import annotations

import io

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from skimage.segmentation import find_boundaries

N_WORST = 4
_CLASS_COLOURS = ((0.1, 0.9, 0.1), (0.1, 0.6, 1.0), (1.0, 0.8, 0.0))


def _outline(mask: np.ndarray) -> np.ndarray:
    return find_boundaries(mask, mode="inner")


def _overlay(image: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """RGB float image with outlines: truth per class in green-ish colours, prediction in magenta.

    ``truth``/``pred`` are ``(C, H, W)`` bool masks or ``(H, W)`` label maps (outlines of objects).
    """
    grey = image.astype(np.float64) / 255.0
    rgb = np.repeat(grey, 3, axis=2) if grey.shape[2] == 1 else grey[..., :3].copy()
    if truth.ndim == 2:
        truth, pred = truth[None], pred[None]
        outline = lambda m: find_boundaries(m, mode="inner")  # noqa: E731 - label maps: object borders
    else:
        outline = _outline
    for c in range(truth.shape[0]):
        rgb[outline(truth[c])] = _CLASS_COLOURS[c % len(_CLASS_COLOURS)]
    for c in range(pred.shape[0]):
        rgb[outline(pred[c])] = (1.0, 0.0, 1.0)
    return rgb


def worst_cases_png(
    images, truth, pred, scores: np.ndarray, case_ids, *, metric: str, higher_is_better: bool
) -> bytes | None:
    """PNG of the ``N_WORST`` cases with the worst per-case ``scores`` (NaN cases skipped)."""
    scores = np.asarray(scores, np.float64)
    defined = np.flatnonzero(~np.isnan(scores))
    if defined.size == 0:
        return None
    order = defined[
        np.argsort(scores[defined] if higher_is_better else -scores[defined], kind="stable")
    ]
    worst = order[:N_WORST]
    with mpl.rc_context():
        mpl.rcdefaults()
        mpl.rcParams.update({"font.size": 8})
        fig = Figure(figsize=(3.0 * len(worst), 3.3))
        axes = fig.subplots(1, len(worst), squeeze=False)[0]
        for ax, i in zip(axes, worst, strict=True):
            ax.imshow(
                _overlay(np.asarray(images[i]), np.asarray(truth[i]), np.asarray(pred[i])),
                interpolation="nearest",
            )
            name = case_ids[i] if len(case_ids[i]) <= 18 else case_ids[i][:16] + "…"
            ax.set_title(f"{name}\n{metric} {scores[i]:.3f}")
            ax.axis("off")
        fig.suptitle("worst test cases: truth (green/blue/yellow per class), prediction (magenta)")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=60, metadata={"Software": None})
    return buffer.getvalue()
