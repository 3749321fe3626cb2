"""{{name}}: a scikit-learn baseline for classification tasks (binary or multiclass).

Each image becomes a feature vector: its pixels downsampled (area averaging) to
``image_size`` x ``image_size`` plus a few intensity percentiles; a standardised logistic
regression maps those to class probabilities.
"""

from __future__ import annotations

import numpy as np
from skimage.transform import resize
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from medbench import Dataset, RunContext, Submission, SubmissionError, TaskInfo


def features(images, size: int) -> np.ndarray:
    """``n`` images ``(H, W, C)`` uint8 -> ``(n, size * size * C + 5 * C)`` float features."""
    rows = []
    for image in images:
        image = np.asarray(image, np.float32) / 255.0
        small = resize(image, (size, size), anti_aliasing=True, preserve_range=True)
        percentiles = np.percentile(image.reshape(-1, image.shape[-1]), [1, 25, 50, 75, 99], axis=0)
        rows.append(np.concatenate([small.ravel(), percentiles.ravel()]))
    return np.asarray(rows, np.float64)


class Model(Submission):
    def __init__(self) -> None:
        self.model = None
        self.size = 16

    def fit(self, task: TaskInfo, train: Dataset, val: Dataset, ctx: RunContext) -> None:
        if task.kind not in ("binary", "multiclass"):
            raise SubmissionError(
                f"{task.name!r} is a {task.kind} task; this model classifies images"
            )
        self.size = int(ctx.option("image_size", 16))
        self.model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        self.model.fit(features(train.images, self.size), np.asarray(train.targets))

    def predict(self, task: TaskInfo, test: Dataset, ctx: RunContext) -> np.ndarray:
        if self.model is None:
            raise SubmissionError("predict called before fit")
        proba = self.model.predict_proba(features(test.images, self.size))
        # Classes absent from train get probability 0: place columns by class index.
        out = np.zeros((len(test), task.n_classes))
        out[:, self.model.classes_.astype(int)] = proba
        return out[:, 1] if task.kind == "binary" else out
