"""Trainer throughput on a GPU: medbench's ``TorchSubmission.fit`` next to a plain PyTorch loop.

    python scripts/gpu_bench.py --json runs/gpu_bench.json              # one CUDA GPU
    python scripts/gpu_bench.py --json runs/gpu_bench.json --reference  # + the reference suite
    python scripts/gpu_bench.py --device cpu --quick [--threads 1]      # smoke test on a CPU

Two reference models: the U-Net of ``submissions/unet`` (base width 32) at 256 px on
jsrt-anatomy's shape (1 channel in, 3 masks out), and ResNet-50 (timm, through
``submissions/cnn``) at 224 px, 3 channels, binary. Each trains on synthetic images of that size
handed to ``fit`` as medbench Datasets (the harness's own loader, bf16 autocast and
channels_last on CUDA), without augmentation, so that only the trainer is measured. After each
trainer epoch, inside its ``on_epoch`` callback, one epoch of a plain loop runs: the same model
architecture, optimiser, loss, batch size and images, held on the device as uint8 tensors and
sliced into batches. The first epoch of each is a warm-up (cuDNN autotuning, worker start-up).

Reported per model (medians over the timed epochs): the trainer's images/s over its training
loop (``train_one_epoch``, as the trainer times it), its images/s over the whole epoch (also the
checkpoint and best-weights writes between epochs), the plain loop's images/s, and the ratio
trainer / plain (target >= 0.9). A plain loop reached about 1,480 images/s for U-Net-32 at 256
px and 3,670 images/s for ResNet-50 at 224 px on one H100. ``--reference`` adds the wall time of
``bash scripts/reference.sh`` (the full reference suite).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medbench.errors import MedbenchError
from medbench.results import environment, json_safe, now_utc
from medbench.submission import trainer as T
from medbench.submission.api import Dataset, RunContext, TaskInfo
from medbench.submission.loader import load_submission
from medbench.submission.torch import TorchSubmission
from medbench.submission.trainer_data import SEGMENTATION
from medbench.submission.transforms import normalise
from medbench.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 0.9
#: A plain loop's images/s on one H100 (bf16 autocast, channels_last), for comparison.
H100_PLAIN = {"unet-32": 1480.0, "resnet50": 3670.0}


@dataclasses.dataclass(frozen=True)
class Bench:
    name: str
    submission: str  # folder under submissions/
    task: str  # the task whose kind, channels and classes the synthetic data takes
    side: int
    batch_size: int
    images: int  # per epoch
    train: dict[str, Any]  # [train] options besides epochs and batch size


def benches(quick: bool, batch_size: int | None) -> list[Bench]:
    """The two models; ``quick``: tiny sizes and a few steps (a smoke test on a CPU)."""
    unet = Bench("unet-32", "unet", "jsrt-anatomy", 256, 8, 2048, {"base_width": 32})
    # random weights: the speed of a step does not depend on them, and ImageNet weights of a timm
    # backbone would need a download
    resnet = Bench(
        "resnet50",
        "cnn",
        "messidor2-referable",
        224,
        32,
        4096,
        {"backbone": "resnet50", "pretrained": False},
    )
    out = [unet, resnet]
    if quick:
        out = [
            dataclasses.replace(
                unet, name="unet-8", side=32, batch_size=2, images=4, train={"base_width": 8}
            ),
            dataclasses.replace(resnet, side=32, batch_size=2, images=4),
        ]
    if batch_size is not None:
        out = [dataclasses.replace(b, batch_size=batch_size) for b in out]
    return out


def synthetic(task: TaskInfo, n: int, seed: int = 0) -> Dataset:
    """``n`` random uint8 images of the task's size, with random masks or alternating labels."""
    rng = np.random.default_rng(seed)
    h, w = task.input_size
    images = rng.integers(0, 256, (n, h, w, task.channels), dtype=np.uint8)
    if task.kind in SEGMENTATION:
        targets = rng.random((n, task.n_classes, h, w)) < 0.3
    else:
        targets = (np.arange(n) % task.n_classes).astype(np.int64)
    return Dataset(images, tuple(f"case-{i}" for i in range(n)), targets)


class PlainLoop:
    """The same model and step without the harness: the images stay on the device."""

    def __init__(self, sub: TorchSubmission, task: TaskInfo, data: Dataset, device: torch.device):
        torch.manual_seed(0)
        self.device = device
        self.amp = device.type == "cuda"  # as the trainer: bf16 autocast on CUDA only
        self.model = sub.build_model(task).to(device, memory_format=torch.channels_last)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=sub.config.lr, weight_decay=sub.config.weight_decay
        )
        self.loss_fn = sub.loss(task).to(device)
        self.x = torch.from_numpy(np.asarray(data.images)).permute(0, 3, 1, 2).to(device)
        self.y = torch.from_numpy(np.asarray(data.targets)).to(device)
        self.batch_size = sub.config.batch_size
        self.generator = torch.Generator(device="cpu").manual_seed(0)

    def epoch(self) -> tuple[float, int]:
        """One epoch (drop_last); returns (seconds, images), synchronised on the device."""
        _sync(self.device)
        started = time.perf_counter()
        self.model.train()
        order = torch.randperm(len(self.x), generator=self.generator).to(self.device)
        total, seen = torch.zeros((), device=self.device), 0
        for start in range(0, len(order) - self.batch_size + 1, self.batch_size):
            index = order[start : start + self.batch_size]
            x = normalise(self.x[index]).contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                logits = self.model(x)
            loss = self.loss_fn(logits.float(), self.y[index])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.detach()
            seen += self.batch_size
        total.item()
        _sync(self.device)
        return time.perf_counter() - started, seen


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_bench(bench: Bench, device: torch.device, epochs: int, workers: int | None) -> dict:
    """``epochs`` timed epochs (after one warm-up) of the trainer, each followed by the plain loop's."""
    manifest, sub = load_submission(ROOT / "submissions" / bench.submission)
    assert isinstance(sub, TorchSubmission)
    # Time the trainer, not the augmentations (tests/bench/test_bench_data.py times those).
    sub.train_transforms = lambda task: None
    spec_task = TaskInfo.from_spec(get_task(bench.task))
    task = dataclasses.replace(spec_task, input_size=(bench.side, bench.side))
    data = synthetic(task, bench.images)
    train = {
        **manifest.train_for(bench.task),
        **bench.train,
        "epochs": epochs + 1,
        "batch_size": bench.batch_size,
    }
    if workers is not None:
        train["num_workers"] = workers
    sub.config = T.TrainConfig.from_options(train)
    plain = PlainLoop(sub, task, data, device)
    epoch_s: list[float] = []
    loop_rate: list[float] = []
    plain_rate: list[float] = []
    last_end: list[float] = []

    def on_epoch(info: dict) -> None:
        begin = time.perf_counter()
        if last_end:  # the wall time of the trainer's whole epoch, from the previous callback
            epoch_s.append(begin - last_end[-1])
            loop_rate.append(info["images_per_s"])
        seconds, seen = plain.epoch()
        plain_rate.append(seen / seconds)
        last_end.append(time.perf_counter())

    with tempfile.TemporaryDirectory(prefix="medbench-gpu-bench-") as workdir:
        ctx = RunContext(
            device=str(device),
            seed=0,
            workdir=Path(workdir),
            logger=logging.getLogger("medbench.gpu_bench"),
            train=train,
            on_epoch=on_epoch,
        )
        sub.fit(task, data, Dataset(data.images[:0], ()), ctx)
    per_epoch = bench.images // bench.batch_size * bench.batch_size
    harness = statistics.median(loop_rate)
    whole = per_epoch / statistics.median(epoch_s)
    plain_med = statistics.median(plain_rate[1:])
    pairs = [h / p for h, p in zip(loop_rate, plain_rate[1:], strict=True)]
    return {
        "model": bench.name,
        "submission": bench.submission,
        "input": f"{task.channels}x{bench.side}x{bench.side}",
        "batch_size": bench.batch_size,
        "images_per_epoch": per_epoch,
        "timed_epochs": epochs,
        "params": sum(p.numel() for p in plain.model.parameters()),
        "harness_images_per_s": harness,
        "harness_epoch_images_per_s": whole,
        "plain_images_per_s": plain_med,
        "ratio": harness / plain_med,
        "ratio_whole_epoch": whole / plain_med,
        "ratio_per_pair": pairs,
        "per_epoch": {
            "harness_loop": loop_rate,
            "harness_epoch_s": epoch_s,
            "plain": plain_rate[1:],
        },
        "h100_plain_images_per_s": H100_PLAIN.get(bench.name),
    }


def time_reference(mode: str) -> dict:
    """Wall time of ``bash scripts/reference.sh`` (``mode``: gpu, cpu or quick)."""
    args = {"gpu": [], "cpu": ["--cpu"], "quick": ["--quick"]}[mode]
    command = ["bash", "scripts/reference.sh", *args]
    # The suite calls `medbench`: the one installed beside this Python comes first on PATH.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, check=False)
    return {
        "command": " ".join(command),
        "seconds": round(time.perf_counter() - started, 1),
        "returncode": done.returncode,
    }


def markdown(report: dict) -> str:
    lines = [
        f"<!-- generated by scripts/gpu_bench.py on {report['date']} -->",
        f"Device: {report['device']}; torch {report['environment']['torch']}; "
        f"timed epochs: {report['timed_epochs']}."
        + (" Quick mode: a smoke test, the figures mean nothing." if report["quick"] else ""),
        "",
        "| model | input | batch | trainer img/s (training loop) | trainer img/s (whole epoch) "
        "| plain loop img/s | ratio | ratio per epoch pair | target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        if "error" in r:
            lines.append(f"| {r['model']} | | | error: {r['error']} | | | | | |")
            continue
        lines.append(
            f"| {r['model']} | {r['input']} | {r['batch_size']} | {r['harness_images_per_s']:,.0f} "
            f"| {r['harness_epoch_images_per_s']:,.0f} | {r['plain_images_per_s']:,.0f} "
            f"| {r['ratio']:.3f} | {min(r['ratio_per_pair']):.2f}-{max(r['ratio_per_pair']):.2f} "
            f"| >= {TARGET_RATIO} |"
        )
    if report.get("reference"):
        ref = report["reference"]
        lines += [
            "",
            f"`{ref['command']}`: {ref['seconds']:,.0f} s wall (exit {ref['returncode']}).",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="torch device (default cuda)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few steps (smoke test)")
    parser.add_argument(
        "--epochs", type=int, default=None, help="timed epochs (default 6; quick 1)"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="override both batch sizes")
    parser.add_argument("--workers", type=int, default=None, help="trainer DataLoader workers")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (1 on a busy shared CPU)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--reference", action="store_true", help="also time scripts/reference.sh")
    parser.add_argument("--reference-mode", choices=("gpu", "cpu", "quick"), default="gpu")
    args = parser.parse_args(argv)
    try:
        device = T.resolve_device(args.device)
    except MedbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    epochs = args.epochs or (1 if args.quick else 6)
    report: dict[str, Any] = {
        "date": now_utc(),
        "device": name,
        "quick": args.quick,
        "timed_epochs": epochs,
        "target_ratio": TARGET_RATIO,
        "environment": environment(ROOT),
        "results": [],
    }
    for bench in benches(args.quick, args.batch_size):
        print(f"{bench.name}: {bench.images} images of {bench.side} px per epoch ...", flush=True)
        try:
            report["results"].append(run_bench(bench, device, epochs, args.workers))
        except Exception as exc:  # one model failing still reports the other
            report["results"].append({"model": bench.name, "error": f"{type(exc).__name__}: {exc}"})
    if args.reference:
        report["reference"] = time_reference(args.reference_mode)
    print(markdown(report))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(json_safe(report), indent=2) + "\n")
        print(f"wrote {args.json}")
    failed = any("error" in r for r in report["results"])
    return 1 if failed or report.get("reference", {}).get("returncode", 0) else 0


if __name__ == "__main__":
    sys.exit(main())
