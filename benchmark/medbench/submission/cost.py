"""A torch model's size and forward FLOPs, as :meth:`TorchSubmission.cost` reports them.

FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode` on one forward pass of one
image (batch 1, eval mode, no gradients): 2 per multiply-add of matrix products and convolutions
(``2 * C_out * C_in / groups * kH * kW * H_out * W_out`` for a convolution, bias not counted);
element-wise operations, normalisation, pooling and interpolation are not counted. The counts do
not depend on the machine, only on the model and the input size.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(all parameters, those with ``requires_grad``); a shared parameter counts once."""
    params = list(model.parameters())
    return (
        sum(p.numel() for p in params),
        sum(p.numel() for p in params if p.requires_grad),
    )


def forward_flops(
    model: nn.Module, shape: tuple[int, int, int], *, channels_last: bool = False
) -> int:
    """FLOPs of ``model`` on one ``(C, H, W)`` input (zeros) on the model's own device.

    The model is put in eval mode for the pass and back in its former mode after."""
    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    x = torch.zeros((1, *shape), device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(training)
    return int(counter.get_total_flops())
