"""The book's single-bias SimpleRNN as a `torch.nn.RNN` twin (for cuDNN and ONNX export).

Keras' SimpleRNN (NLP in Action 8.1.5; `models/simple_rnn.py`) computes
`h[t] = tanh(x[t] @ kernel + h[t-1] @ recurrent_kernel + bias)` with one bias; `torch.nn.RNN` computes
`h[t] = tanh(x[t] @ W_ih.T + b_ih + h[t-1] @ W_hh.T + b_hh)` with two. The twin is an `nn.RNN`
(tanh, one layer, unidirectional, batch_first) with W_ih = kernel.T, W_hh = recurrent_kernel.T,
b_ih = bias and b_hh frozen at zero (`requires_grad=False`, never updated), so both compute the same
function with the same trainable weights: E*H + H*H + H (17,550 for E=300, H=50), and the book
network keeps its 37,551 trainable parameters (80,101 at H=100).

models/cudnn_rnn.py runs a `SimpleRNN`'s own parameters through this twin (how `SimpleRNN` computes on
CUDA: cuDNN), so its state_dict, optimizer state and checkpoints are the same on every device.

Symbols: B batch, T time, E embedding dims (features), H units, V vocabulary size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from loopynet.models.simple_rnn import SimpleRNN


class SimpleRNNTwin(nn.Module):
    """`SimpleRNN`'s interface over a `torch.nn.RNN` (`self.rnn`) whose `bias_hh_l0` is a frozen zero.

    forward(x (B, T, E), h0 (B, H) or None) -> (out (B, T, H), last (B, H)), like `SimpleRNN.forward`;
    on a CUDA device `torch.nn.RNN` runs it with cuDNN.
    """

    def __init__(self, embedding_dims: int, units: int):
        super().__init__()
        self.embedding_dims = embedding_dims
        self.units = units
        self.rnn = nn.RNN(embedding_dims, units, nonlinearity="tanh", batch_first=True)
        with torch.no_grad():
            self.rnn.bias_hh_l0.zero_()
        self.rnn.bias_hh_l0.requires_grad_(False)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, E), h0 (B, H) or None (zeros) -> (out (B, T, H), last (B, H))."""
        out, last = self.rnn(x, None if h0 is None else h0.unsqueeze(0))
        return out, last[0]

    def forward_ids(self, ids: torch.Tensor, table: torch.Tensor,
                    h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward(table[ids], h0)`: ids (B, T) integer indices into the (V, E) `table`.

        Raises:
            IndexError: an id is negative or >= V (on CPU; CUDA reports it as a device-side assert).
        """
        return self.forward(F.embedding(ids, table), h0)


def from_simple_rnn(layer: SimpleRNN) -> SimpleRNNTwin:
    """A `SimpleRNNTwin` with `layer`'s weights (copied, same dtype and device)."""
    twin = SimpleRNNTwin(layer.embedding_dims, layer.units).to(device=layer.kernel.device, dtype=layer.kernel.dtype)
    with torch.no_grad():
        twin.rnn.weight_ih_l0.copy_(layer.kernel.t())
        twin.rnn.weight_hh_l0.copy_(layer.recurrent_kernel.t())
        twin.rnn.bias_ih_l0.copy_(layer.bias)
        twin.rnn.bias_hh_l0.zero_()
    return twin


def to_simple_rnn(twin: SimpleRNNTwin) -> SimpleRNN:
    """The `SimpleRNN` with `twin`'s weights (copied, same dtype and device).

    Raises:
        ValueError: the twin's `bias_hh_l0` is not all zero (it was trained or edited: the single-bias
            layer cannot hold it).
    """
    rnn = twin.rnn
    if torch.count_nonzero(rnn.bias_hh_l0).item():
        raise ValueError("the torch.nn.RNN twin's bias_hh_l0 is not zero: it has no single-bias SimpleRNN equivalent")
    layer = SimpleRNN(twin.embedding_dims, twin.units).to(device=rnn.weight_ih_l0.device, dtype=rnn.weight_ih_l0.dtype)
    with torch.no_grad():
        layer.kernel.copy_(rnn.weight_ih_l0.t())
        layer.recurrent_kernel.copy_(rnn.weight_hh_l0.t())
        layer.bias.copy_(rnn.bias_ih_l0)
    return layer

