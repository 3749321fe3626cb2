"""Output heads of the standard trainer's classifiers: ``[train] heads``.

``"softmax"`` (the default): one logit per class, cross-entropy, softmax probabilities.

``"cumulative"``: Gulshan et al. (2016) trained several binary heads on the ordered grades
(moderate-or-worse, severe-or-worse, ...) with one binary cross-entropy loss each. For ``K``
ordered classes the model has ``K - 1`` logits; head ``k`` (1 .. K-1) predicts P(class >= k),
trained with binary cross-entropy against ``class >= k`` (mean over heads). A prediction turns
the heads into class probabilities: the head probabilities are made non-increasing (a running
minimum, so P(>= k+1) never exceeds P(>= k)), then P(class = 0) = 1 - P(>= 1),
P(class = k) = P(>= k) - P(>= k+1) and P(class = K-1) = P(>= K-1). For a binary task this is
one head and plain binary cross-entropy. A binary view of the task (``referable`` = grade >= 2,
see :mod:`medbench.coarse`) then reads head 2 directly: P(2) + P(3) + P(4) = P(>= 2).

No torch import at module level: the parent checks ``heads`` values without loading torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medbench.errors import SubmissionError

if TYPE_CHECKING:
    import torch

HEADS = ("softmax", "cumulative")
CLASSIFICATION = ("binary", "multiclass")


def check_heads(value: object, where: str) -> None:
    if not isinstance(value, str) or value not in HEADS:
        allowed = ", ".join(repr(h) for h in HEADS)
        raise SubmissionError(f"{where}: heads must be one of {allowed}; got {value!r}")


def outputs(heads: str, kind: str, n_classes: int) -> int | None:
    """Logits a classifier needs for ``heads`` (None: the kind's default)."""
    if heads == "cumulative" and kind in CLASSIFICATION:
        return n_classes - 1
    return None


def cumulative_targets(target: torch.Tensor, n_heads: int) -> torch.Tensor:
    """``(N,)`` class indices -> ``(N, n_heads)`` floats: column k-1 is ``class >= k``."""
    import torch

    levels = torch.arange(1, n_heads + 1, device=target.device)
    return (target.reshape(-1, 1) >= levels).float()


def class_probabilities(head_probs: torch.Tensor) -> torch.Tensor:
    """``(N, K-1)`` head probabilities P(>= k) -> ``(N, K)`` class probabilities (see above)."""
    import torch

    at_least = torch.cummin(head_probs, dim=1).values
    ones = torch.ones_like(at_least[:, :1])
    zeros = torch.zeros_like(at_least[:, :1])
    upper = torch.cat([ones, at_least], dim=1)  # P(>= 0) .. P(>= K-1)
    lower = torch.cat([at_least, zeros], dim=1)  # P(>= 1) .. P(>= K) = 0
    return (upper - lower).clamp_min(0.0)


def cumulative_loss():
    """Mean binary cross-entropy of the heads against ``class >= k`` (computed in float32)."""
    from torch import nn
    from torch.nn import functional as F

    class CumulativeBCE(nn.Module):
        def forward(self, logits, target):
            logits = logits.float()
            return F.binary_cross_entropy_with_logits(
                logits, cumulative_targets(target, logits.shape[1])
            )

    return CumulativeBCE()
