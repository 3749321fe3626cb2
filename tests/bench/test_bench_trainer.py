"""Overhead of the standard trainer: ``TorchSubmission.fit`` against a plain PyTorch loop.

Both train the same tiny CNN on the same 1,024 synthetic 64x64 grey images (the toy-lesions
shape) on the CPU, from the same initial weights, in the same batch order, with the same batch
size (32), optimiser (AdamW, lr 1e-3, weight decay 1e-4), cosine schedule and cross-entropy:
their per-epoch losses must agree, which shows that the two loops do the same work.

The epochs are interleaved: each epoch of the plain loop runs inside the trainer's ``on_epoch``
callback, right after the trainer's own epoch, so a pair of epochs sees the same machine load.
The trainer's epoch is the wall time between two callbacks (loader, step, scheduler, checkpoint,
best weights, log line: everything it does per epoch); the first pair is a warm-up. The figure
is the median over pairs of (trainer images/s) / (plain images/s); the target is >= 0.9, asserted
only with ``--benchmark-enable`` (a timed assertion in a loaded CI run would be flaky).
"""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from medbench.submission import trainer as T
from medbench.submission.api import Dataset, RunContext, TaskInfo
from medbench.submission.torch import TorchSubmission
from medbench.submission.trainer_data import EpochSampler
from medbench.submission.transforms import normalise
from medbench.tasks import get_task

N_IMAGES, SIDE, BATCH, WIDTH, SEED = 1024, 64, 32, 16, 0
TARGET_RATIO = 0.9


def tiny_cnn(channels: int, classes: int) -> nn.Sequential:
    """Two stride-2 conv blocks, global pooling, a linear head: about 5k parameters."""
    return nn.Sequential(
        nn.Conv2d(channels, WIDTH, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(WIDTH),
        nn.ReLU(inplace=True),
        nn.Conv2d(WIDTH, 2 * WIDTH, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(2 * WIDTH),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * WIDTH, classes),
    )


class TinyNet(TorchSubmission):
    def build_model(self, task: TaskInfo) -> nn.Module:
        return tiny_cnn(task.channels, self.num_outputs(task))


class PlainLoop:
    """What one would write without the harness: tensors in memory, sliced into batches."""

    def __init__(self, task: TaskInfo, images: np.ndarray, labels: np.ndarray, epochs: int) -> None:
        T.seed_all(SEED)  # as fit() does before build_model: the same initial weights
        self.model = tiny_cnn(task.channels, 2).to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-3, weight_decay=1e-4)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=epochs)
        self.loss_fn = nn.CrossEntropyLoss()
        self.x = torch.from_numpy(images).permute(0, 3, 1, 2)  # (N, C, H, W) uint8
        self.y = torch.from_numpy(labels)
        # Only for the batch order (the trainer's), so that the losses can be compared.
        self.sampler = EpochSampler(len(labels), SEED)

    def epoch(self, epoch: int) -> tuple[float, int]:
        """One epoch; returns (mean loss per image, images seen)."""
        self.sampler.set_epoch(epoch)
        order = torch.tensor([i for i, _ in self.sampler])
        self.model.train()
        total, seen = torch.zeros(()), 0
        for start in range(0, len(order) - BATCH + 1, BATCH):  # drop_last, as the trainer
            index = order[start : start + BATCH]
            x = normalise(self.x[index]).contiguous(memory_format=torch.channels_last)
            loss = self.loss_fn(self.model(x), self.y[index])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.detach() * BATCH
            seen += BATCH
        self.scheduler.step()
        return (total / seen).item(), seen


def _interleaved_fit(task: TaskInfo, train: Dataset, epochs: int, workdir: Path) -> dict[str, list]:
    """One fit of the trainer with an epoch of the plain loop after each of its epochs."""
    plain = PlainLoop(task, np.asarray(train.images), np.asarray(train.targets), epochs)
    out: dict[str, list] = {"harness_s": [], "plain_s": [], "harness_loss": [], "plain_loss": []}
    out.update(seen=[], self_reported=[])
    last_end: list[float] = []

    def on_epoch(info: dict) -> None:
        begin = time.perf_counter()
        if last_end:
            out["harness_s"].append(begin - last_end[-1])
        loss, seen = plain.epoch(info["epoch"])
        end = time.perf_counter()
        out["plain_s"].append(end - begin)
        out["harness_loss"].append(info["loss"])
        out["plain_loss"].append(loss)
        out["seen"].append(seen)
        out["self_reported"].append(info["images_per_s"])
        last_end.append(end)

    ctx = RunContext(
        device="cpu",
        seed=SEED,
        workdir=workdir,
        logger=logging.getLogger("medbench.bench"),
        train={"epochs": epochs, "batch_size": BATCH},
        on_epoch=on_epoch,
    )
    TinyNet().fit(task, train, Dataset(train.images[:0], ()), ctx)
    out["plain_s"] = out["plain_s"][1:]  # the first pair warms both up
    return out


def test_bench_trainer_overhead_vs_plain_loop(benchmark, tmp_path, one_torch_thread):
    rng = np.random.default_rng(SEED)
    labels = (np.arange(N_IMAGES) % 2).astype(np.int64)
    images = rng.integers(0, 200, (N_IMAGES, SIDE, SIDE, 1), dtype=np.uint8)
    images[labels == 1] += 40  # a learnable difference: brighter positives
    train = Dataset(images, tuple(f"case-{i}" for i in range(N_IMAGES)), labels)
    task = TaskInfo.from_spec(get_task("toy-lesions"))
    assert task.kind == "binary" and task.input_size == (SIDE, SIDE)

    epochs = 9 if benchmark.enabled else 3
    fits: list[dict[str, list]] = []

    def run() -> None:
        fits.append(_interleaved_fit(task, train, epochs, tmp_path / f"fit-{len(fits)}"))

    benchmark.pedantic(run, rounds=3 if benchmark.enabled else 1, iterations=1)

    per_epoch = N_IMAGES // BATCH * BATCH
    for fit in fits:
        # The same work: identical batches and weights give the same losses, and they fall.
        assert fit["seen"] == [per_epoch] * epochs
        np.testing.assert_allclose(fit["harness_loss"], fit["plain_loss"], rtol=1e-4)
        assert fit["harness_loss"][-1] < fit["harness_loss"][0]
    harness_s = [s for fit in fits for s in fit["harness_s"]]
    plain_s = [s for fit in fits for s in fit["plain_s"]]
    ratios = [p / h for h, p in zip(harness_s, plain_s, strict=True)]
    ratio = statistics.median(ratios)
    benchmark.extra_info.update(
        ratio=round(ratio, 3),
        ratio_min=round(min(ratios), 3),
        ratio_max=round(max(ratios), 3),
        pairs=len(ratios),
        harness_images_per_s=round(per_epoch / statistics.median(harness_s), 1),
        plain_images_per_s=round(per_epoch / statistics.median(plain_s), 1),
        harness_self_reported_images_per_s=round(
            statistics.median(v for fit in fits for v in fit["self_reported"][1:]), 1
        ),
        images_per_epoch=per_epoch,
        batch_size=BATCH,
        side=SIDE,
        torch_threads=torch.get_num_threads(),
    )
    info = benchmark.extra_info
    print(
        f"trainer {info['harness_images_per_s']:.0f} images/s, plain loop "
        f"{info['plain_images_per_s']:.0f} images/s: ratio {ratio:.3f} (median of {len(ratios)} "
        f"interleaved epoch pairs, range {min(ratios):.3f}-{max(ratios):.3f}; target >= {TARGET_RATIO})"
    )
    if benchmark.enabled:
        assert ratio >= TARGET_RATIO, (
            f"the trainer reaches {ratio:.3f} of a plain loop's images/s; expected >= {TARGET_RATIO}"
        )
