"""Keras-compatible SimpleRNN layer (one bias, Keras initialisers) in PyTorch.

Symbols: B batch, T time, E embedding dims (features), H units.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from loopynet.models.recurrence import simple_recurrence


def glorot_uniform_(weight: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Keras' glorot_uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010).

    `weight` is in Keras layout (fan_in, fan_out).
    """
    fan_in, fan_out = weight.shape
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return weight.uniform_(-limit, limit, generator=generator)


def orthogonal_(weight: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Keras' orthogonal initialiser (Saxe et al. 2014): Q of the QR of a normal matrix, sign-fixed."""
    rows, cols = weight.shape
    flat = torch.randn(max(rows, cols), min(rows, cols), generator=generator, dtype=weight.dtype)
    q, r = torch.linalg.qr(flat)
    q = q * torch.sign(torch.diagonal(r))
    if rows < cols:
        q = q.t()
    with torch.no_grad():
        return weight.copy_(q[:rows, :cols])


class SimpleRNN(nn.Module):
    """`h[t] = tanh(x[t] @ kernel + h[t-1] @ recurrent_kernel + bias)`, Keras' SimpleRNN.

    Parameters (Keras names and layout): kernel (E, H) glorot_uniform, recurrent_kernel (H, H)
    orthogonal, bias (H,) zeros: E*H + H*H + H weights (17,550 for E=300, H=50), one bias unlike
    `torch.nn.RNN`'s two.

    Equivalent plain loop::

        h = zeros(B, H)
        for t in range(T):
            h = tanh(x[:, t] @ kernel + h @ recurrent_kernel + bias); out[:, t] = h

    Input x: (B, T, E). Output: (B, T, H) (`return_sequences=True`) and the last state (B, H).
    """

    def __init__(self, embedding_dims: int, units: int, generator: torch.Generator | None = None):
        super().__init__()
        self.embedding_dims = embedding_dims
        self.units = units
        self.kernel = nn.Parameter(glorot_uniform_(torch.empty(embedding_dims, units), generator))
        self.recurrent_kernel = nn.Parameter(orthogonal_(torch.empty(units, units), generator))
        self.bias = nn.Parameter(torch.zeros(units))

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, E = x.shape
        a = torch.addmm(self.bias, x.transpose(0, 1).reshape(T * B, E), self.kernel)  # (T*B, H)
        h = simple_recurrence(a.view(T, B, self.units), self.recurrent_kernel, h0)  # (T, B, H)
        return h.transpose(0, 1), h[-1]
