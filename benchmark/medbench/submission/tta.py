"""Test-time augmentation by flips: ``[train] tta`` of the standard trainer.

The prediction is the mean of the *activated* outputs (softmax or sigmoid probabilities, never
logits) over the identity and the flipped copies of each image. A segmentation output map is
flipped back before it is averaged, so every map lines up with the original image; class
probabilities are averaged as they are.

Segmentation batches are padded bottom/right to a multiple of the model's divisor. A flip
mirrors only the image's own ``(h, w)`` region and leaves the padding where it was: the model
sees the flipped image exactly as it would see that image in the data set, padded bottom/right
as in training.

No torch import here: the parent process checks ``tta`` values without loading torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from medbench.errors import SubmissionError

if TYPE_CHECKING:
    import torch

# Mode -> the flips added to the identity, as tensor dims of (N, C, H, W): -1 = horizontal
# (left-right), -2 = vertical (up-down). "hflip" for anatomy that is upright in every image
# (a chest radiograph turned upside down is not one the model will ever be shown).
TTA_FLIPS: dict[str, tuple[tuple[int, ...], ...]] = {
    "none": (),
    "hflip": ((-1,),),
    "flips": ((-1,), (-2,), (-2, -1)),
}
TTA_MODES: tuple[str, ...] = tuple(TTA_FLIPS)


def check_mode(value: object, where: str) -> None:
    """Refuse a ``tta`` value that is not one of :data:`TTA_MODES`, naming the allowed ones."""
    if not isinstance(value, str) or value not in TTA_FLIPS:
        allowed = ", ".join(repr(m) for m in TTA_MODES)
        raise SubmissionError(f"{where} tta must be one of {allowed}; got {value!r}")


def flip_valid(
    batch: torch.Tensor, sizes: Sequence[tuple[int, int]], dims: tuple[int, ...]
) -> torch.Tensor:
    """Flip each ``(C, H, W)`` item of ``batch`` over ``dims`` within its top-left ``(h, w)``.

    ``batch``: ``(N, C, H, W)``; ``sizes``: N pairs ``(h, w)`` with ``h <= H``, ``w <= W``. The
    padding outside ``(h, w)`` stays in place. Its own inverse.
    """
    height, width = batch.shape[-2:]
    if all(size == (height, width) for size in sizes):
        return batch.flip(dims)
    out = batch.clone()
    if len(set(sizes)) == 1:
        h, w = sizes[0]
        out[..., :h, :w] = batch[..., :h, :w].flip(dims)
        return out
    for i, (h, w) in enumerate(sizes):
        out[i, :, :h, :w] = batch[i, :, :h, :w].flip(dims)
    return out


def average_over_flips(
    forward: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    sizes: Sequence[tuple[int, int]],
    mode: str,
) -> torch.Tensor:
    """Mean of ``forward`` over the identity and the flips of ``mode``.

    ``images``: ``(N, C, H, W)``, ``sizes`` their unpadded ``(h, w)``. ``forward`` returns
    probabilities ``(N, K)`` (averaged as they are) or ``(N, K, H, W)`` (each flipped back
    first). ``mode="none"`` returns ``forward(images)`` itself.
    """
    check_mode(mode, "[train]")
    total = forward(images)
    flips = TTA_FLIPS[mode]
    if not flips:
        return total
    for dims in flips:
        out = forward(flip_valid(images, sizes, dims))
        total = total + (flip_valid(out, sizes, dims) if out.ndim == 4 else out)
    return total / (1 + len(flips))
