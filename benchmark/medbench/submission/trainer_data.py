"""Torch datasets over medbench :class:`~medbench.submission.api.Dataset` objects, and their loaders.

Training randomness (order, crops, augmentation) is a pure function of ``(seed, epoch, case)``:
:class:`EpochSampler` yields ``(index, sample_seed)`` pairs drawn from ``(seed, epoch)``, and
:class:`TrainingSet` seeds its crop and its albumentations pipeline from ``sample_seed``. So the
same seed gives the same batches whatever the number of workers, and a run resumed at epoch
``e`` sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from medbench.submission.api import Dataset
from medbench.submission.instances import instance_targets
from medbench.submission.transforms import pad_to_multiple, random_crop, reseed

SEGMENTATION = ("multilabel-segmentation", "instance-segmentation")


class EpochSampler(Sampler):
    """Yields ``(index, sample_seed)`` for every case, shuffled per epoch from ``(seed, epoch)``."""

    def __init__(self, n: int, seed: int, *, shuffle: bool = True) -> None:
        self.n = n
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        seeds = rng.integers(0, 2**31 - 1, self.n)
        return iter(zip(order.tolist(), seeds.tolist(), strict=True))


class TrainingSet(torch.utils.data.Dataset):
    """Labelled cases as ``(uint8 (C, H, W) image, target)`` tensors, cropped and augmented.

    Targets: ``()`` int64 class (binary, multiclass); ``(C, H, W)`` uint8 masks (multilabel
    segmentation); ``(2, H, W)`` uint8 foreground + boundary (instance segmentation, see
    :mod:`medbench.submission.instances`). ``crop`` is the side of the random square crop (None:
    whole images); ``divisor`` pads segmentation inputs to a multiple of it.
    """

    def __init__(
        self,
        data: Dataset,
        kind: str,
        *,
        transform: Any = None,
        crop: int | None = None,
        divisor: int = 1,
    ) -> None:
        self.data = data
        self.kind = kind
        self.transform = transform
        self.crop = crop
        self.divisor = divisor

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, seed = key if isinstance(key, tuple) else (key, 0)
        image = np.asarray(self.data.images[index])
        target = np.asarray(self.data.targets[index])
        segmentation = self.kind in SEGMENTATION
        if self.kind == "multilabel-segmentation":
            target = target.transpose(1, 2, 0).astype(np.uint8)  # (H, W, C) for albumentations
        if segmentation and self.crop:
            image, target = random_crop(image, target, self.crop, np.random.default_rng(seed))
        if self.transform is not None:
            reseed(self.transform, seed)
            if segmentation:
                out = self.transform(image=image, mask=target)
                image, target = out["image"], out["mask"]
            else:
                image = self.transform(image=image)["image"]
        if self.kind == "instance-segmentation":
            target = instance_targets(target).transpose(1, 2, 0).astype(np.uint8)
        if segmentation:
            image = pad_to_multiple(image, self.divisor)
            target = pad_to_multiple(target, self.divisor)
            target_t = torch.from_numpy(_owned(target.transpose(2, 0, 1)))
        else:
            target_t = torch.tensor(int(target), dtype=torch.int64)
        return to_chw(image), target_t


class ImageSet(torch.utils.data.Dataset):
    """Images only, as ``(uint8 (C, H, W) image padded to ``divisor``, original (H, W))``."""

    def __init__(self, data: Dataset, *, divisor: int = 1) -> None:
        self.data = data
        self.divisor = divisor

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = np.asarray(self.data.images[index])
        size = torch.tensor(image.shape[:2], dtype=torch.int64)
        return to_chw(pad_to_multiple(image, self.divisor)), size


def to_chw(image: np.ndarray) -> torch.Tensor:
    if image.ndim == 2:
        image = image[:, :, None]
    return torch.from_numpy(_owned(image.transpose(2, 0, 1)))


def _owned(array: np.ndarray) -> np.ndarray:
    """A C-contiguous, writable array (memory-mapped cases are read-only views)."""
    out = np.ascontiguousarray(array)
    return out if out.flags.writeable else out.copy()


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` in a DataLoader worker from its torch seed (for user transforms)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def default_workers(device: torch.device) -> int:
    return min(8, os.cpu_count() or 1) if device.type == "cuda" else 0


def make_loader(
    dataset: torch.utils.data.Dataset,
    *,
    batch_size: int,
    device: torch.device,
    num_workers: int,
    sampler: Sampler | None = None,
    drop_last: bool = False,
    seed: int = 0,
) -> DataLoader:
    """A DataLoader with pinned memory and persistent workers on CUDA, seeded everywhere."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        drop_last=drop_last,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=num_workers > 0,
        prefetch_factor=4 if num_workers > 0 else None,
        worker_init_fn=seed_worker,
        generator=generator,
    )
