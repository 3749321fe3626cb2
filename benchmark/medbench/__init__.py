"""medbench: a competition harness for medical imaging.

The public surface a submission may import::

    from medbench import Submission, TorchSubmission, TaskInfo, RunContext, Dataset
    from medbench import validation_score   # the task's primary metric, as medbench scores it
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from medbench.errors import (  # noqa: E402
    DataError,
    MedbenchError,
    PredictionError,
    SubmissionError,
)
from medbench.submission.api import Dataset, RunContext, Submission, TaskInfo  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from medbench.submission.torch import TorchSubmission


def __getattr__(name: str) -> Any:
    # torch is heavy: import it only when a submission asks for TorchSubmission.
    if name == "TorchSubmission":
        from medbench.submission.torch import TorchSubmission

        return TorchSubmission
    if name == "validation_score":  # scoring pulls in pandas and the metric registry
        from medbench.scoring import validation_score

        return validation_score
    raise AttributeError(f"module 'medbench' has no attribute {name!r}")


__all__ = [
    "DataError",
    "Dataset",
    "MedbenchError",
    "PredictionError",
    "RunContext",
    "Submission",
    "SubmissionError",
    "TaskInfo",
    "TorchSubmission",
    "__version__",
    "validation_score",
]
