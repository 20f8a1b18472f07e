"""The book's SimpleRNN on cuDNN: its own parameters run through a storage-less `torch.nn.RNN`, its twin
(models/twin.py: W_ih = kernel.T, W_hh = recurrent_kernel.T, b_ih = bias, b_hh = 0).

Used by `SimpleRNN` on every device but the CPU, so that the layer's state_dict, optimizer state and
checkpoints are the same whatever the device. Symbols: B batch, T time, E embedding dims, H units.
"""

from __future__ import annotations

import functools
import warnings

import torch
from torch import nn
from torch.func import functional_call


# run_as_twin hands cuDNN the layer's own (transposed) tensors rather than one flat buffer; cuDNN copies
# them together on each call (~E*H + H*H + 2H numbers) and torch warns about that once. It is intended.
warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous chunk of memory")


def run_as_twin(layer: nn.Module, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`layer(x, h0)` of a `SimpleRNN` computed by `torch.nn.RNN` (cuDNN on a CUDA device) with its parameters.

    W_ih = kernel.T, W_hh = recurrent_kernel.T, b_ih = bias, b_hh = zeros: gradients reach the layer's
    kernel, recurrent_kernel and bias; the zero second bias is a constant.

    Args:
        x: (B, T, E) inputs on the layer's device and dtype.
        h0: (B, H) initial state, or None (zeros).

    Returns:
        out (B, T, H) and last (B, H).
    """
    weights = {"weight_ih_l0": layer.kernel.t(), "weight_hh_l0": layer.recurrent_kernel.t(),
               "bias_ih_l0": layer.bias, "bias_hh_l0": torch.zeros_like(layer.bias)}
    shell = _shell(layer.embedding_dims, layer.units, layer.kernel.dtype)
    out, last = functional_call(shell, weights, (x, None if h0 is None else h0.unsqueeze(0)))
    return out, last[0]


@functools.lru_cache(maxsize=16)
def _shell(embedding_dims: int, units: int, dtype: torch.dtype) -> nn.RNN:
    """A storage-less (meta) `nn.RNN` of the twin's shape: `functional_call` supplies its weights."""
    return nn.RNN(embedding_dims, units, nonlinearity="tanh", batch_first=True, device="meta", dtype=dtype)
