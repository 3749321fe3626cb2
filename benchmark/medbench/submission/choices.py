"""The standard trainer's segmentation options ``[train] loss``, ``tile`` and ``tile_overlap``:
their allowed values and checks.

No torch import: the parent process checks a manifest's values before a run is staged, without
loading torch (the losses are in :mod:`medbench.submission.trainer_losses`, the tiling in
:mod:`medbench.submission.tiles`).
"""

from __future__ import annotations

from typing import Any

from medbench.errors import SubmissionError

#: ``[train] loss`` of a segmentation task -> what it is (Novikov et al. 2018 compare the last
#: three; see :mod:`medbench.submission.trainer_losses` for the formulas).
LOSSES: dict[str, str] = {
    "bce+dice": "binary cross-entropy + soft Dice (the default)",
    "dice": "soft Dice alone",
    "ce": "pixel-wise binary cross-entropy",
    "weighted-ce": "pixel-wise binary cross-entropy, classes weighted by inverse frequency",
}
DEFAULT_LOSS = "bce+dice"
DEFAULT_TILE_OVERLAP = 32  # pixels shared by neighbouring windows of [train] tile
SEGMENTATION_KINDS = ("multilabel-segmentation", "instance-segmentation")


def check_loss(value: object, where: str) -> None:
    """Refuse a ``loss`` that is not one of :data:`LOSSES`, naming the allowed ones."""
    if not isinstance(value, str) or value not in LOSSES:
        allowed = ", ".join(repr(name) for name in LOSSES)
        raise SubmissionError(f"{where} loss must be one of {allowed}; got {value!r}")


def check_loss_for(kind: str, loss: str) -> None:
    """A non-default ``loss`` is for segmentation: classifiers train with cross-entropy."""
    if loss != DEFAULT_LOSS and kind not in SEGMENTATION_KINDS:
        raise SubmissionError(
            f"[train] loss = {loss!r} is for segmentation tasks; a {kind} task trains with "
            "cross-entropy (override TorchSubmission.loss for another)"
        )


def check_tile(tile: Any, overlap: Any, divisor: int) -> None:
    """``tile`` None (whole images) or a positive multiple of the model's ``divisor``;
    ``tile_overlap`` from 0 to half the tile (the ramps at a window's two sides then never
    cross)."""
    if tile is None:
        return
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise SubmissionError(f"[train] tile must be a positive integer (pixels); got {tile!r}")
    if tile % divisor:
        raise SubmissionError(
            f"[train] tile must be a multiple of the model's size divisor {divisor}; got {tile}"
        )
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap <= tile // 2:
        raise SubmissionError(
            f"[train] tile_overlap must be an integer from 0 to half the tile ({tile} px); "
            f"got {overlap!r}"
        )
