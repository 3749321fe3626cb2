"""The standard PyTorch trainer: a submission that only writes ``build_model``.

A typical entry::

    from medbench import TorchSubmission

    class MyNet(TorchSubmission):
        def build_model(self, task):
            return MyModule(task.channels, self.num_outputs(task))

It may override :meth:`~TorchSubmission.train_transforms` (albumentations), :meth:`~TorchSubmission.loss`,
:meth:`~TorchSubmission.optimizer`, :meth:`~TorchSubmission.scheduler` and
:meth:`~TorchSubmission.postprocess`. The ``[train]`` table of the manifest sets the options of
:class:`~medbench.submission.trainer.TrainConfig`; any other key is read with :meth:`option`.

What the model sees and returns, by task kind:

- ``binary``: ``(N, C, H, W)`` -> ``(N, 2)`` logits, trained with cross-entropy; the prediction is
  the softmax probability of class 1.
- ``multiclass``: ``(N, C, H, W)`` -> ``(N, K)`` logits, cross-entropy; softmax rows.
- ``multilabel-segmentation``: ``(N, C, H, W)`` -> ``(N, K, H, W)`` logits, BCE + soft Dice;
  sigmoid probabilities (float16).
- ``instance-segmentation``: ``(N, C, H, W)`` -> ``(N, 2, H, W)`` logits for foreground and a
  2-pixel boundary band inside each object, BCE + soft Dice; prediction thresholds both, takes
  foreground minus boundary as one seed per object and grows the seeds back over the foreground
  with a watershed (see :mod:`medbench.submission.instances`).

Inputs are ``uint8 / 255`` then ``(x - 0.5) / 0.25`` per channel. Segmentation inputs are padded
(zeros, bottom/right) to a multiple of :attr:`size_divisor`; native-size tasks train on random
``image_size`` crops and predict whole images, cropped back to their size.

Model and batches are channels_last (:attr:`TorchSubmission.channels_last`). On CUDA: bf16
autocast, cudnn benchmark, pinned memory, persistent DataLoader workers. On CPU: float32 and
deterministic algorithms, so one seed gives identical predictions.

About once a minute (``[train] checkpoint_minutes``; or every ``checkpoint_every`` epochs) and
after the last epoch, the trainer writes ``checkpoint.pt`` (atomically) to ``ctx.workdir``; the
weights with the best validation metric are kept in ``best.pt`` and used to predict. With ``ctx.resume`` an interrupted
run continues from its checkpoint and ends as the uninterrupted run would have.

``[train] loss`` chooses the segmentation loss (BCE + soft Dice, soft Dice, pixel-wise BCE, or BCE
weighted by inverse class frequency in the training masks); ``[train] tile = 256`` with
``tile_overlap = 32`` predicts segmentation maps in overlapping, blended windows
(:mod:`medbench.submission.tiles`), so a model trained on crops predicts large images whole.

``[train] tta = "hflip"`` or ``"flips"`` averages the probabilities of :meth:`predict` (the val
and the test predictions alike, so operating points chosen on val fit the test predictions)
over flipped copies of each image, maps flipped back, before :meth:`postprocess`; it costs 2x or
4x the prediction time. The per-epoch validation that picks ``best.pt`` stays without TTA: it
is model selection, run every ``val_every`` epochs, and TTA would multiply its cost.
"""

from __future__ import annotations

import logging
import math
import time
from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medbench.errors import SubmissionError
from medbench.submission import heads as H
from medbench.submission import trainer as T
from medbench.submission.api import Dataset, Prediction, RunContext, Submission, TaskInfo
from medbench.submission.choices import check_loss_for, check_tile
from medbench.submission.cost import count_parameters, forward_flops
from medbench.submission.instances import instance_targets, instances_from_probabilities
from medbench.submission.trainer import TrainConfig, train_one_epoch
from medbench.submission.trainer_data import (
    SEGMENTATION,
    EpochSampler,
    ImageSet,
    TrainingSet,
    default_workers,
    make_loader,
)
from medbench.submission.trainer_losses import (
    class_frequencies,
    default_loss,
    segmentation_loss,
)

__all__ = ["TorchSubmission", "TrainConfig", "train_one_epoch"]

_clock = time.monotonic  # when checkpoints fall due (a test replaces it)


class TorchSubmission(Submission):
    """A :class:`Submission` trained by the standard loop; subclasses implement :meth:`build_model`."""

    #: Segmentation inputs are padded to a multiple of this (4 pooling levels -> 16).
    size_divisor: int = 16
    #: Model and batches in channels_last memory format: faster with cuDNN and with oneDNN on CPUs
    #: (about 20 % for a U-Net on a 2-core CPU); set False for a model where it is not.
    channels_last: bool = True
    config: TrainConfig = TrainConfig()
    _model: nn.Module | None = None
    _mask_frequencies: np.ndarray | None = None  # for [train] loss = "weighted-ce"

    # --- hooks -----------------------------------------------------------------------------------

    @abstractmethod
    def build_model(self, task: TaskInfo) -> nn.Module:
        """A module mapping ``(N, task.channels, H, W)`` to ``num_outputs(task)`` logits (see module doc)."""

    def train_transforms(self, task: TaskInfo) -> Any:
        """An albumentations pipeline for training images (HWC uint8) and masks, or None.

        It must keep images uint8 (no ``Normalize``/``ToTensorV2``: the trainer normalises on
        the device). Default None: anatomy has a handedness, so even a flip is not safe for
        every task.
        """
        return None

    def loss(self, task: TaskInfo) -> nn.Module:
        """``loss(logits, target)``; default by kind: cross-entropy, or for segmentation the
        ``[train] loss`` (BCE + soft Dice unless set; :mod:`~medbench.submission.trainer_losses`)."""
        if task.kind in SEGMENTATION:
            return segmentation_loss(self.config.loss, self._mask_frequencies)
        return default_loss(task.kind)

    def optimizer(self, model: nn.Module, task: TaskInfo) -> torch.optim.Optimizer:
        """AdamW with ``[train]`` ``lr`` (1e-3) and ``weight_decay`` (1e-4)."""
        return torch.optim.AdamW(
            model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
        )

    def scheduler(self, optimizer: torch.optim.Optimizer, task: TaskInfo) -> Any:
        """Stepped once per epoch; default cosine annealing over ``epochs``. None for a fixed rate."""
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.config.epochs)

    def postprocess(self, task: TaskInfo, probabilities: np.ndarray) -> Any:
        """One case's activated output -> its prediction in the contract's shape.

        ``probabilities``: ``(K,)`` softmax (binary, multiclass) or ``(C, H, W)`` sigmoid at the
        image's size (segmentation). Instance tasks: foreground + boundary -> label map by
        seeded watershed.
        """
        if task.kind == "binary":
            return float(probabilities[1])
        if task.kind == "multiclass":
            return probabilities.astype(np.float64)
        if task.kind == "instance-segmentation":
            return instances_from_probabilities(probabilities[0], probabilities[1])
        return probabilities.astype(np.float16)

    def validation_metric(self, task: TaskInfo, targets: Any, predictions: Prediction) -> float:
        """The task's primary metric on validation predictions (what "best" means)."""
        from medbench import scoring

        return float(scoring.validation_score(task, targets, predictions))

    # --- helpers for subclasses ------------------------------------------------------------------

    def num_outputs(self, task: TaskInfo) -> int:
        """Output channels the model must have: 2 (binary, instance), K (multiclass), C (masks);
        K - 1 for a classifier with ``[train] heads = "cumulative"`` (one head per level)."""
        config = getattr(self, "config", None)
        heads = H.outputs(config.heads, task.kind, task.n_classes) if config is not None else None
        if heads is not None:
            return heads
        if task.kind in ("binary", "instance-segmentation"):
            return 2
        return task.n_classes

    def option(self, name: str, default: Any = None) -> Any:
        """A ``[train]`` key of the current run (e.g. ``base_width``)."""
        return self.config.options.get(name, default)

    def crop_size(self, task: TaskInfo) -> int | None:
        """Side of the random training crop, or None to train on whole images."""
        if task.kind not in SEGMENTATION:
            return None
        if task.input_size is None:
            return self.config.image_size or T.DEFAULT_CROP
        size = self.config.image_size
        return size if size is not None and size < min(task.input_size) else None

    # --- the contract ----------------------------------------------------------------------------

    def fit(self, task: TaskInfo, train: Dataset, val: Dataset, ctx: RunContext) -> None:
        self.config = TrainConfig.from_options(ctx.train)
        if self.config.heads != "softmax" and task.kind not in H.CLASSIFICATION:
            raise SubmissionError(
                f"[train] heads = {self.config.heads!r} is for classification; {task.name!r} is "
                f"{task.kind}"
            )
        check_loss_for(task.kind, self.config.loss)
        if self.config.tile is not None and task.kind not in SEGMENTATION:
            raise SubmissionError(f"[train] tile is for segmentation; {task.name!r} is {task.kind}")
        check_tile(self.config.tile, self.config.tile_overlap, self.size_divisor)
        device = T.resolve_device(ctx.device)
        cuda = device.type == "cuda"
        if cuda:
            torch.backends.cudnn.benchmark = True
        workdir = Path(ctx.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        log = ctx.logger or logging.getLogger("medbench.submission")
        if len(train) == 0:
            raise SubmissionError(f"fit on {task.name!r} got an empty training set")
        T.seed_all(ctx.seed)
        self._model = None
        self._mask_frequencies = None
        if self.config.loss == "weighted-ce":
            self._mask_frequencies = training_mask_frequencies(task, train)
            log.info(
                "weighted-ce: foreground frequencies %s",
                ", ".join(f"{f:.4f}" for f in self._mask_frequencies),
            )
        with T.deterministic(not cuda):
            model = self._new_model(task, device)
            run = _Run(self, task, train, val, ctx, model, device, log)
            run.start(resume=ctx.resume)
            run.loop()
        model.load_state_dict(T.load(workdir / T.BEST))
        self._model = model

    def predict(self, task: TaskInfo, test: Dataset, ctx: RunContext) -> Prediction:
        self.config = TrainConfig.from_options(ctx.train)
        device = T.resolve_device(ctx.device)
        model = self._model
        if model is None:
            best = Path(ctx.workdir) / T.BEST
            if not best.is_file():
                raise SubmissionError(
                    f"predict needs trained weights: {best} does not exist (call fit first)"
                )
            model = self._new_model(task, device)
            model.load_state_dict(T.load(best))
            self._model = model
        loader = self._inference_loader(task, test, device)
        return self._collect(task, model, loader, device, tta=self.config.tta)

    def cost(self, task: TaskInfo) -> dict[str, Any] | None:
        """The fitted model's parameters and the FLOPs of one forward pass of one image at
        :meth:`cost_input` (:mod:`medbench.submission.cost`); None before :meth:`fit`."""
        model = self._model
        if model is None:
            return None
        params, trainable = count_parameters(model)
        (h, w), note = self.cost_input(task)
        # An operation the counter cannot trace costs the count, never the trained run.
        try:
            flops = forward_flops(model, (task.channels, h, w), channels_last=self.channels_last)
        except Exception as exc:
            logging.getLogger("medbench.submission").warning("FLOPs not counted: %s", exc)
            flops, note = None, f"not counted ({type(exc).__name__}: {exc})"
        return {
            "params": params,
            "trainable_params": trainable,
            "flops_per_image": flops,
            "flops_input": [h, w],
            "flops_input_note": note,
        }

    def cost_input(self, task: TaskInfo) -> tuple[tuple[int, int], str]:
        """The ``(H, W)`` the FLOPs are counted at, and why: the task's input size (padded as
        the trainer pads it), or for a native-size task the training crop (segmentation) or
        ``[train] image_size``, else the trainer's default crop."""
        if task.input_size is not None:
            h, w = task.input_size
            d = self.size_divisor if task.kind in SEGMENTATION else 1
            hp, wp = -(-h // d) * d, -(-w // d) * d
            if (hp, wp) == (h, w):
                return (h, w), "the task's input size"
            return (hp, wp), f"the task's input size {h}x{w}, padded to a multiple of {d}"
        side = self.crop_size(task) or self.config.image_size or T.DEFAULT_CROP
        return (side, side), f"native-size task: at the {side} px training crop"

    # --- internals shared by fit and predict -----------------------------------------------------

    def _new_model(self, task: TaskInfo, device: torch.device) -> nn.Module:
        model = self.build_model(task)
        if not isinstance(model, nn.Module):
            raise SubmissionError(
                f"build_model must return a torch.nn.Module; got {type(model).__name__}"
            )
        if self.channels_last:
            return model.to(device, memory_format=torch.channels_last)
        return model.to(device)

    def _amp(self, device: torch.device) -> bool:
        return device.type == "cuda" and self.config.amp

    def _workers(self, device: torch.device) -> int:
        n = self.config.num_workers
        return default_workers(device) if n is None else n

    def _inference_loader(self, task: TaskInfo, data: Dataset, device: torch.device) -> Any:
        native = task.input_size is None
        divisor = self.size_divisor if task.kind in SEGMENTATION else 1
        return make_loader(
            ImageSet(data, divisor=divisor),
            batch_size=1 if native else self.config.batch_size,
            device=device,
            num_workers=self._workers(device),
        )

    def _collect(
        self,
        task: TaskInfo,
        model: nn.Module,
        loader: Any,
        device: torch.device,
        *,
        tta: str = "none",
    ) -> Prediction:
        """Run ``model`` over ``loader`` and return predictions in the contract's shapes;
        ``tta``: probabilities averaged over flips (:mod:`medbench.submission.tta`)."""
        activation = "softmax" if task.kind in ("binary", "multiclass") else "sigmoid"
        if H.outputs(self.config.heads, task.kind, task.n_classes) is not None:
            activation = "cumulative"
        segmentation = task.kind in SEGMENTATION
        out = []
        batches = T.infer(
            model,
            loader,
            device,
            self._amp(device),
            activation,
            channels_last=self.channels_last,
            tta=tta,
            tile=self.config.tile if segmentation else None,
            tile_overlap=self.config.tile_overlap,
        )
        for probs, sizes in batches:
            for p, (h, w) in zip(probs, sizes, strict=True):
                out.append(self.postprocess(task, p[:, :h, :w] if segmentation else p))
        if task.kind == "instance-segmentation":
            return out
        if task.kind == "binary":
            return np.asarray(out, np.float64).reshape(-1)
        if task.kind == "multiclass":
            rows = np.asarray(out, np.float64).reshape(len(out), -1)
            return rows / rows.sum(axis=1, keepdims=True)
        return np.stack(out) if out else np.zeros((0, task.n_classes, 0, 0), np.float16)

    def _check_outputs(
        self, task: TaskInfo, model: nn.Module, data: Dataset, device: torch.device
    ) -> None:
        """One forward pass on one training image: the model's output shape must fit the task."""
        divisor = self.size_divisor if task.kind in SEGMENTATION else 1
        images = ImageSet(data, divisor=divisor)[0][0][None]
        model.eval()
        with torch.no_grad():
            out = model(T.to_input(images, device, self.channels_last))
        n, c, h, w = images.shape
        k = self.num_outputs(task)
        expected = (n, k, h, w) if task.kind in SEGMENTATION else (n, k)
        if tuple(out.shape) != expected:
            raise SubmissionError(
                f"build_model for {task.kind} task {task.name!r} must map {(n, c, h, w)} inputs to "
                f"{expected} logits; got {tuple(out.shape)}"
            )


def training_mask_frequencies(task: TaskInfo, train: Dataset) -> np.ndarray:
    """Foreground frequency per output channel over the training masks, as the loss sees them
    (instance tasks: foreground and boundary band; :mod:`~medbench.submission.instances`)."""
    if task.kind == "instance-segmentation":
        masks = (instance_targets(np.asarray(t)) for t in train.targets)
        return class_frequencies(masks, 2)
    return class_frequencies((np.asarray(t) for t in train.targets), task.n_classes)


class _Run:
    """The state of one fit: loaders, optimiser, best metric; one method per step of the loop."""

    def __init__(
        self,
        sub: TorchSubmission,
        task: TaskInfo,
        train: Dataset,
        val: Dataset,
        ctx: RunContext,
        model: nn.Module,
        device: torch.device,
        log: logging.Logger,
    ) -> None:
        self.sub, self.task, self.val, self.ctx = sub, task, val, ctx
        self.model, self.device, self.log = model, device, log
        self.config = sub.config
        self.workdir = Path(ctx.workdir)
        self.amp = sub._amp(device)
        # Cumulative heads bring their loss (binary cross-entropy per level), whatever loss()
        # the submission defines for its softmax head.
        cumulative = H.outputs(self.config.heads, task.kind, task.n_classes) is not None
        self.loss_fn = (H.cumulative_loss() if cumulative else sub.loss(task)).to(device)
        self.optimizer = sub.optimizer(model, task)
        self.scheduler = sub.scheduler(self.optimizer, task)
        self.sampler = EpochSampler(len(train), ctx.seed)
        divisor = sub.size_divisor if task.kind in SEGMENTATION else 1
        dataset = TrainingSet(
            train,
            task.kind,
            transform=sub.train_transforms(task),
            crop=sub.crop_size(task),
            divisor=divisor,
        )
        self.loader = make_loader(
            dataset,
            batch_size=self.config.batch_size,
            device=device,
            num_workers=sub._workers(device),
            sampler=self.sampler,
            drop_last=len(train) > self.config.batch_size,
            seed=ctx.seed,
        )
        self.val_loader = sub._inference_loader(task, val, device) if len(val) else None
        self.train = train
        self.epoch = 0  # last completed epoch
        self.best: float | None = None
        self.best_epoch = 0
        self.elapsed = 0.0
        self.val_seconds = 0.0
        self.finished = False
        self.history: list[dict[str, Any]] = []
        self.best_state: dict[str, torch.Tensor] | None = None  # best weights not yet on disk
        self.last_write = _clock()  # when a checkpoint was last written (or training began)

    # -- start / resume --

    def start(self, *, resume: bool) -> None:
        checkpoint = self.workdir / T.CHECKPOINT
        if resume and checkpoint.is_file():
            state = T.load(checkpoint)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state.get("scheduler") is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            self.epoch, self.best, self.best_epoch = (
                state["epoch"],
                state["best"],
                state["best_epoch"],
            )
            self.elapsed, self.finished = state["elapsed_s"], state["finished"]
            self.history = list(state["history"])
            T.set_rng_state(state["rng"])
            self.log.info(
                "resuming %s from %s after epoch %d", self.task.name, checkpoint, self.epoch
            )
        else:
            (self.workdir / T.BEST).unlink(missing_ok=True)
            self.sub._check_outputs(self.task, self.model, self.train, self.device)

    # -- the loop --

    def loop(self) -> None:
        epochs = self.config.epochs
        budget = None if self.config.max_minutes is None else 60.0 * self.config.max_minutes
        while not self.finished and self.epoch < epochs:
            epoch = self.epoch + 1
            self.sampler.set_epoch(epoch)
            self.loader.generator.manual_seed(
                int(np.random.SeedSequence([self.ctx.seed, epoch]).generate_state(1)[0])
            )
            started = time.perf_counter()
            loss, seen = train_one_epoch(
                self.model,
                self.loader,
                self.loss_fn,
                self.optimizer,
                self.device,
                self.amp,
                channels_last=self.sub.channels_last,
            )
            train_s = time.perf_counter() - started
            if self.scheduler is not None:
                self.scheduler.step()
            if not math.isfinite(loss):
                raise SubmissionError(
                    f"training loss of {self.task.name!r} became {loss} in epoch {epoch}"
                )
            out_of_time = (
                budget is not None
                and self.elapsed + train_s + 2 * self.val_seconds + train_s > budget
            )
            last = epoch == epochs or out_of_time
            metric = None
            if self.val_loader is not None and (epoch % self.config.val_every == 0 or last):
                t0 = time.perf_counter()
                metric = self.validate()
                self.val_seconds = time.perf_counter() - t0
            improved = self.keep_best(epoch, metric)
            stop = last or (
                self.config.patience is not None
                and self.best_epoch > 0
                and epoch - self.best_epoch >= self.config.patience
            )
            seconds = time.perf_counter() - started
            self.elapsed += seconds
            self.epoch, self.finished = epoch, stop
            info = {
                "epoch": epoch,
                "epochs": epochs,
                "loss": loss,
                "val_metric": metric,
                "images_per_s": seen / train_s if train_s > 0 else float("nan"),
                "seconds": seconds,
                "metric": self.task.primary_metric,
                "best": self.best,
                "best_epoch": self.best_epoch,
                "lr": self.optimizer.param_groups[0]["lr"],
            }
            self.history.append(info)
            if stop or self.checkpoint_due(epoch):
                self.save_checkpoint()
            self.report(info, improved, out_of_time and epoch < epochs)
            if self.ctx.on_epoch is not None:
                self.ctx.on_epoch(dict(info))

    def checkpoint_due(self, epoch: int) -> bool:
        """Every ``checkpoint_every`` epochs when set, else once ``checkpoint_minutes`` have
        passed since the last write (or since training began)."""
        if self.config.checkpoint_every is not None:
            return epoch % self.config.checkpoint_every == 0
        return _clock() - self.last_write >= 60.0 * self.config.checkpoint_minutes

    def validate(self) -> float:
        # No TTA here whatever [train] tta says: this picks the best epoch (see the module doc).
        predictions = self.sub._collect(self.task, self.model, self.val_loader, self.device)
        return self.sub.validation_metric(self.task, self.val.targets, predictions)

    def keep_best(self, epoch: int, metric: float | None) -> bool:
        """Keep the weights when ``metric`` beats the best so far; until a finite metric exists,
        the latest weights stand in (no validation set, or an undefined metric). They reach
        best.pt with the next checkpoint, so best.pt and checkpoint.pt always agree."""
        finite = metric is not None and math.isfinite(metric)
        better = finite and (
            self.best is None
            or (metric > self.best if self.task.higher_is_better else metric < self.best)
        )
        if better:
            self.best, self.best_epoch = float(metric), epoch
        if better or self.best is None:
            self.best_state = T.state_dict_cpu(self.model)
        return bool(better)

    def save_checkpoint(self) -> None:
        """best.pt first, then checkpoint.pt: a kill between the two leaves a best.pt no older
        than the checkpoint's best epoch, which a resume then improves on or keeps."""
        if self.best_state is not None:
            T.save_atomic(self.best_state, self.workdir / T.BEST)
            self.best_state = None
        T.save_atomic(
            {
                "model": T.state_dict_cpu(self.model),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "epoch": self.epoch,
                "best": self.best,
                "best_epoch": self.best_epoch,
                "elapsed_s": self.elapsed,
                "finished": self.finished,
                "history": self.history,
                "rng": T.rng_state(),
            },
            self.workdir / T.CHECKPOINT,
        )
        self.last_write = _clock()

    def report(self, info: dict[str, Any], improved: bool, out_of_time: bool) -> None:
        metric = "-" if info["val_metric"] is None else f"{info['val_metric']:.4f}"
        best = "-" if self.best is None else f"{self.best:.4f} @ {self.best_epoch}"
        self.log.info(
            "%s epoch %d/%d loss %.4f val %s %s%s (best %s) %.0f img/s %.1f s%s",
            self.task.name,
            info["epoch"],
            info["epochs"],
            info["loss"],
            self.task.primary_metric,
            metric,
            " *" if improved else "",
            best,
            info["images_per_s"],
            info["seconds"],
            "; stopping: max_minutes reached" if out_of_time else "",
        )
