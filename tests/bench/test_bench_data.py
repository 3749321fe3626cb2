"""Speed of the data path: ``prepare`` per task, and the training DataLoader with augmentations.

``prepare`` is timed with ``force=True`` into a private MEDBENCH_HOME, for every task whose
data is here (the toys always; the others from the mirror, MEDBENCH_DATA). The DataLoader reads
a prepared cache through :class:`TrainingSet` with the reference submissions' augmentations and
batch sizes (their ``submission.toml``), with 2 worker processes.

Throughput (images/s, median of the timed rounds) is in each benchmark's ``extra_info``. With
benchmarks disabled (CI) only the toys and ISBI 2012 (30 slices) run, once each; the other
tasks need ``--benchmark-enable``::

    MEDBENCH_DATA=../shared/data pytest tests/bench/test_bench_data.py --benchmark-enable
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from medbench.data.prepare import PreparedTask, prepare, status
from medbench.submission.api import Dataset, TaskInfo
from medbench.submission.loader import load_submission
from medbench.submission.trainer import TrainConfig
from medbench.submission.trainer_data import SEGMENTATION, EpochSampler, TrainingSet, make_loader
from medbench.tasks import TASKS, get_task
from medbench.tasks.spec import SPLITS
from medbench.tasks.splits import load_split

SUBMISSIONS = Path(__file__).resolve().parents[2] / "submissions"
#: What runs with benchmarks disabled: the generated toys and one small real task.
CI_TASKS = ("toy-anatomy", "toy-lesions", "isbi2012-membranes")
LOADER_WORKERS = 2


def _task_param(name: str):
    generated = name.startswith("toy-")
    return pytest.param(name, marks=() if generated else pytest.mark.mirror, id=name)


def _source(name: str, request: pytest.FixtureRequest) -> Path | None:
    """The folder to prepare ``name`` from (None for generated data); skips absent data."""
    if get_task(name).dataset.startswith("toy-"):
        return None
    mirror = request.getfixturevalue("mirror")
    found = status(name, from_dir=mirror)
    if found.state == "absent":
        pytest.skip(f"{name}: no data here ({found.detail})")
    return mirror


def _skip_heavy(name: str, benchmark) -> None:
    if name not in CI_TASKS and not benchmark.enabled:
        pytest.skip(f"{name}: heavy, runs with --benchmark-enable (CI runs {', '.join(CI_TASKS)})")


def _rate(images: int, seconds: list[float]) -> dict[str, float]:
    """images/s of the median round, and the range over rounds."""
    return {
        "images_per_s": round(images / statistics.median(seconds), 1),
        "images_per_s_min": round(images / max(seconds), 1),
        "images_per_s_max": round(images / min(seconds), 1),
        "rounds": len(seconds),
    }


# --- prepare -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [_task_param(n) for n in sorted(TASKS.names())])
def test_bench_prepare(benchmark, request, private_home, name):
    _skip_heavy(name, benchmark)
    source = _source(name, request)
    spec = get_task(name)
    seconds: list[float] = []

    def run() -> PreparedTask:
        started = time.perf_counter()
        ready = prepare(spec, from_dir=source, force=True)
        seconds.append(time.perf_counter() - started)
        return ready

    # One untimed round first: the raw files are then in the page cache for every timed round.
    warmup = 1 if benchmark.enabled else 0
    rounds = 5 if name in CI_TASKS or name == "retinamnist" else 3
    ready = benchmark.pedantic(run, rounds=rounds, warmup_rounds=warmup, iterations=1)

    counts = ready.manifest["counts"]
    n_images = sum(counts.values())
    if spec.option("split_unit") != "sequence":
        assert n_images == len(load_split(spec))
    for split in SPLITS:
        data = ready.split(split)
        assert len(data.images) == len(data.targets) == counts[split]
        first = np.asarray(data.images[0])
        assert first.dtype == np.uint8 and first.shape[2] == spec.input.channels
        if spec.input.size is not None:
            assert data.images.shape == (counts[split], *spec.input.size, spec.input.channels)
    # prepare() reads cases with min(8, cpu count) threads.
    threads = min(8, os.cpu_count() or 1)
    benchmark.extra_info.update(
        task=name, images=n_images, threads=threads, **_rate(n_images, seconds[warmup:])
    )
    print(
        f"prepare {name}: {benchmark.extra_info['images_per_s']:.0f} images/s ({n_images} images)"
    )


# --- the training DataLoader ---------------------------------------------------------------------

LOADERS = [
    pytest.param(
        "unet", "isbi2012-membranes", id="unet-isbi2012-membranes", marks=pytest.mark.mirror
    ),
    pytest.param("unet", "jsrt-anatomy", id="unet-jsrt-anatomy", marks=pytest.mark.mirror),
    pytest.param(
        "cnn", "messidor2-referable", id="cnn-messidor2-referable", marks=pytest.mark.mirror
    ),
]


@pytest.mark.parametrize(("submission", "name"), LOADERS)
def test_bench_training_loader(benchmark, request, private_home, submission, name):
    """Batches per second of the reference training pipeline: memory-mapped cache, random crop,
    the submission's albumentations, padding, collation; 2 persistent worker processes."""
    _skip_heavy(name, benchmark)
    source = _source(name, request)
    manifest, sub = load_submission(SUBMISSIONS / submission)
    sub.config = TrainConfig.from_options(manifest.train_for(name))
    task = TaskInfo.from_spec(get_task(name))
    split = prepare(name, from_dir=source).split("train")
    data = Dataset(split.images, split.case_ids, split.targets)
    transform = sub.train_transforms(task)
    assert transform is not None, f"{submission} has no augmentation for {name}"
    segmentation = task.kind in SEGMENTATION
    dataset = TrainingSet(
        data,
        task.kind,
        transform=transform,
        crop=sub.crop_size(task),
        divisor=sub.size_divisor if segmentation else 1,
    )
    batch = sub.config.batch_size
    sampler = EpochSampler(len(data), seed=0)
    loader = make_loader(
        dataset,
        batch_size=batch,
        device=torch.device("cpu"),
        num_workers=LOADER_WORKERS,
        sampler=sampler,
        drop_last=True,
        seed=0,
    )
    per_epoch = len(data) // batch * batch
    # Whole epochs (ISBI has 2 batches in one) until at least this many images per round.
    min_images = 160 if benchmark.enabled else 2 * batch
    side = sub.crop_size(task) or min(task.input_size)
    shapes: set[tuple] = set()
    seconds: list[float] = []
    seen: list[int] = []
    epoch = [0]

    def run() -> None:
        started, images = time.perf_counter(), 0
        while images < min_images:
            epoch[0] += 1
            sampler.set_epoch(epoch[0])
            for x, y in loader:
                images += x.shape[0]
                shapes.add((x.dtype, tuple(x.shape), y.dtype, tuple(y.shape), int(y.max())))
        seconds.append(time.perf_counter() - started)
        seen.append(images)

    warmup = 1 if benchmark.enabled else 0  # the first epoch starts the workers
    benchmark.pedantic(run, rounds=5 if benchmark.enabled else 1, warmup_rounds=warmup)

    assert len(set(seen)) == 1 and seen[0] % per_epoch == 0 and seen[0] >= min_images
    channels = task.n_classes if segmentation else None
    for x_dtype, x_shape, y_dtype, y_shape, y_max in shapes:
        assert x_dtype == torch.uint8 and x_shape == (batch, task.channels, side, side)
        if segmentation:
            assert y_dtype == torch.uint8 and y_shape == (batch, channels, side, side)
            assert y_max <= 1
        else:
            assert y_dtype == torch.int64 and y_shape == (batch,) and y_max < task.n_classes
    rate = _rate(seen[-1], seconds[warmup:])
    benchmark.extra_info.update(
        task=name,
        submission=submission,
        batch_size=batch,
        workers=LOADER_WORKERS,
        side=side,
        **rate,
    )
    print(
        f"loader {submission}/{name}: {rate['images_per_s']:.0f} images/s, {LOADER_WORKERS} workers"
    )
