"""The pieces of the standard trainer: its options, the epoch loop, inference, checkpoints, seeding.

:func:`train_one_epoch` is the whole inner loop and is kept lean on purpose: no host
synchronisation per step (the loss is summed on the device and read once per epoch), no
validation inside, uint8 batches normalised on the device.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medbench.errors import MedbenchError, SubmissionError
from medbench.submission.api import seed_everything
from medbench.submission.choices import DEFAULT_LOSS, DEFAULT_TILE_OVERLAP, check_loss, check_tile
from medbench.submission.heads import check_heads, class_probabilities
from medbench.submission.tiles import tiled
from medbench.submission.transforms import normalise
from medbench.submission.tta import average_over_flips, check_mode

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
DEFAULT_CROP = 256


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class TrainConfig:
    """The ``[train]`` keys the standard trainer reads (other keys stay in ``options``).

    ``image_size`` is the side of the random training crop: always used for native-size tasks
    (default 256), and for fixed-size segmentation tasks only when set below the task's size.
    ``num_workers`` None = ``min(8, cpu count)`` on CUDA, 0 on CPU. ``patience`` counts epochs
    without a better validation metric; ``max_minutes`` bounds the training wall time.
    Checkpoints: the resumable ``checkpoint.pt`` (and ``best.pt``; the best weights wait in
    memory) is written after the last epoch and, by default, after the first epoch that ends
    ``checkpoint_minutes`` (1; 0 = every epoch) or more after the previous write: a killed run loses at most a
    minute of training plus the epoch in progress, on every device, and a GPU whose epochs take
    a fraction of a second no longer spends its time writing weights. ``checkpoint_every = N``
    writes every N epochs instead (a resume then repeats at most N - 1 epochs).
    ``tta``: test-time augmentation of the predictions (val and test; not the per-epoch
    validation that picks the best epoch): ``"none"``, ``"hflip"`` (identity + left-right flip)
    or ``"flips"`` (identity, left-right, up-down and both); see :mod:`medbench.submission.tta`.
    ``heads``: ``"softmax"`` or ``"cumulative"`` (Gulshan et al.'s binary heads on ordered
    classes, one per level); see :mod:`medbench.submission.heads`.
    ``loss`` (segmentation): ``"bce+dice"``, ``"dice"``, ``"ce"`` or ``"weighted-ce"``; see
    :mod:`medbench.submission.trainer_losses`. ``tile`` / ``tile_overlap`` (segmentation):
    predict in overlapping ``tile``-pixel windows, blended (:mod:`medbench.submission.tiles`);
    None (the default) predicts whole images.
    """

    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    num_workers: int | None = None
    val_every: int = 1
    checkpoint_every: int | None = None
    checkpoint_minutes: float = 1.0
    patience: int | None = None
    max_minutes: float | None = None
    image_size: int | None = None
    amp: bool = True
    tta: str = "none"
    heads: str = "softmax"
    loss: str = DEFAULT_LOSS
    tile: int | None = None
    tile_overlap: int = DEFAULT_TILE_OVERLAP
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> TrainConfig:
        options = dict(options or {})
        config = cls(
            epochs=int(options.get("epochs", cls.epochs)),
            batch_size=int(options.get("batch_size", cls.batch_size)),
            lr=float(options.get("lr", cls.lr)),
            weight_decay=float(options.get("weight_decay", cls.weight_decay)),
            num_workers=options.get("num_workers"),
            val_every=int(options.get("val_every", cls.val_every)),
            checkpoint_every=_optional_int(options.get("checkpoint_every")),
            checkpoint_minutes=float(options.get("checkpoint_minutes", cls.checkpoint_minutes)),
            patience=options.get("patience"),
            max_minutes=options.get("max_minutes"),
            image_size=options.get("image_size"),
            amp=bool(options.get("amp", cls.amp)),
            tta=options.get("tta", cls.tta),
            heads=options.get("heads", cls.heads),
            loss=options.get("loss", cls.loss),
            tile=options.get("tile"),
            tile_overlap=options.get("tile_overlap", cls.tile_overlap),
            options=options,
        )
        config.check()
        return config

    def check(self) -> None:
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "val_every": self.val_every,
            "checkpoint_every": self.checkpoint_every,
            "image_size": self.image_size,
            "patience": self.patience,
        }
        for name, value in positive.items():
            if value is not None and value < 1:
                raise SubmissionError(f"[train] {name} must be at least 1; got {value}")
        if self.num_workers is not None and self.num_workers < 0:
            raise SubmissionError(f"[train] num_workers must be 0 or more; got {self.num_workers}")
        if not (self.checkpoint_minutes >= 0 and math.isfinite(self.checkpoint_minutes)):
            raise SubmissionError(
                "[train] checkpoint_minutes must be 0 (after every epoch) or more; "
                f"got {self.checkpoint_minutes}"
            )
        for name, value in {"lr": self.lr, "max_minutes": self.max_minutes}.items():
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise SubmissionError(f"[train] {name} must be a positive number; got {value}")
        if self.weight_decay < 0:
            raise SubmissionError(
                f"[train] weight_decay must be 0 or more; got {self.weight_decay}"
            )
        check_mode(self.tta, "[train]")
        check_heads(self.heads, "[train]")
        check_loss(self.loss, "[train]")
        check_tile(self.tile, self.tile_overlap, 1)


def resolve_device(name: str) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"`` -> a torch device; CUDA that is absent is an error."""
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise MedbenchError(f"unknown device {name!r}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MedbenchError(f"device {name!r} was asked for, but torch sees no CUDA device")
    return device


def to_input(
    images: torch.Tensor, device: torch.device, channels_last: bool = True
) -> torch.Tensor:
    """Host batch -> normalised float on ``device``, channels_last for 4-D batches if asked."""
    images = normalise(images.to(device, non_blocking=True))
    if channels_last and images.ndim == 4:
        images = images.contiguous(memory_format=torch.channels_last)
    return images


def train_one_epoch(
    model: nn.Module,
    loader: Any,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    amp: bool,
    *,
    channels_last: bool = True,
) -> tuple[float, int]:
    """One pass over ``loader``; returns (mean loss per image, images seen).

    ``amp``: bf16 autocast (CUDA); the loss itself is computed in float32. ``channels_last``
    should match the model's memory format.
    """
    model.train()
    total = torch.zeros((), device=device)
    seen = 0
    for images, targets in loader:
        images = to_input(images, device, channels_last)
        targets = targets.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(images)
        loss = loss_fn(logits.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach() * images.shape[0]
        seen += images.shape[0]
    return (total / max(seen, 1)).item(), seen


@torch.no_grad()
def infer(
    model: nn.Module,
    loader: Any,
    device: torch.device,
    amp: bool,
    activation: str,
    *,
    channels_last: bool = True,
    tta: str = "none",
    tile: int | None = None,
    tile_overlap: int = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (probabilities as float32 numpy, original ``(H, W)`` sizes) batch by batch.

    ``activation``: ``"softmax"`` over dim 1 (class logits), ``"sigmoid"`` (channels) or
    ``"cumulative"`` (sigmoid heads P(class >= k) -> class probabilities).
    ``tta``: a mode of :data:`~medbench.submission.tta.TTA_FLIPS`; the probabilities are
    averaged over its flips (maps flipped back first). ``tile``: segmentation maps predicted
    in overlapping windows of that side, blended (:func:`~medbench.submission.tiles.tiled`).
    """
    model.eval()

    def forward(images: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(images)
        logits = logits.float()
        if activation == "cumulative":
            return class_probabilities(torch.sigmoid(logits))
        return torch.softmax(logits, dim=1) if activation == "softmax" else torch.sigmoid(logits)

    for images, sizes in loader:
        images = to_input(images, device, channels_last)
        valid = [(int(h), int(w)) for h, w in sizes.tolist()]
        probs = average_over_flips(tiled(forward, tile, tile_overlap), images, valid, tta)
        yield probs.cpu().numpy(), sizes.numpy()


# --- seeding and determinism ---------------------------------------------------------------------


seed_all = seed_everything  # torch is loaded here, so it is seeded too


@contextmanager
def deterministic(enabled: bool) -> Iterator[None]:
    """``torch.use_deterministic_algorithms(True, warn_only=True)`` inside, the old setting after."""
    if not enabled:
        yield
        return
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def rng_state() -> dict[str, Any]:
    """Every global RNG state, in types ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": (
            kind,
            torch.from_numpy(np.asarray(keys, np.int64)),
            int(pos),
            int(has_gauss),
            float(gauss),
        ),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --- checkpoints ---------------------------------------------------------------------------------


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file next to ``path``, then rename: never a half file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load(path: Path) -> Any:
    return torch.load(path, map_location="cpu", weights_only=True)


def state_dict_cpu(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
