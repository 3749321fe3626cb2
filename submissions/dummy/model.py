"""The dummy submission: what a model that looks at no image would predict.

- binary: the positive rate of the training set, for every case (a constant: AUC 0.5);
- multiclass: the class frequencies of the training set, for every case;
- multilabel segmentation: empty masks, ``(n, C, H, W)`` all False (Dice 0 wherever the truth
  is not empty);
- instance segmentation: one empty label map of each test image's size (no objects).
"""

from __future__ import annotations

import numpy as np

from medbench import Dataset, RunContext, Submission, SubmissionError, TaskInfo


class Dummy(Submission):
    """Predicts the training priors; never looks at an image."""

    def __init__(self) -> None:
        self.priors: np.ndarray | None = None

    def fit(self, task: TaskInfo, train: Dataset, val: Dataset, ctx: RunContext) -> None:
        if task.kind in ("binary", "multiclass"):
            labels = np.asarray(train.targets, np.int64).reshape(-1)
            counts = np.bincount(labels, minlength=task.n_classes).astype(np.float64)
            self.priors = (
                counts / counts.sum()
                if counts.sum()
                else np.full(task.n_classes, 1 / task.n_classes)
            )

    def predict(
        self, task: TaskInfo, test: Dataset, ctx: RunContext
    ) -> np.ndarray | list[np.ndarray]:
        n = len(test)
        if task.kind in ("binary", "multiclass"):
            if self.priors is None:
                raise SubmissionError(
                    f"dummy: predict on {task.name!r} before fit (no class priors)"
                )
            if task.kind == "binary":
                return np.full(n, self.priors[1], np.float64)
            return np.tile(self.priors, (n, 1))
        sizes = [np.shape(test.images[i])[:2] for i in range(n)]
        if task.kind == "instance-segmentation":
            return [np.zeros(size, np.int32) for size in sizes]
        h, w = task.input_size or (sizes[0] if sizes else (0, 0))
        return np.zeros((n, task.n_classes, h, w), bool)
