"""torch.nn.LSTM / torch.nn.GRU layers (one direction) run on loopynet's fused C recurrences.

Symbols: T time, B batch, E input features, H units, G gates (LSTM 4: i, f, g, o; GRU 3: r, z, n), V vocabulary.

The parameters stay in the `torch.nn.LSTM` / `torch.nn.GRU` module (same names, initialisation and
saved state as the pure-torch path); only the computation differs, in float order:

- the input projection `gx = x @ W_ih^T + b_ih` for all steps is one BLAS product (torch); for token
  ids it is computed once per distinct token of the batch and gathered to the positions
  (`project_ids`), and with a trainable table the rows' gradient is sparse (only the rows the batch
  uses; `torch.optim.SparseAdam`), as `F.embedding(..., sparse=True)` gives;
- the recurrence (each step's `h_prev @ W_hh^T`, gates, state update) and its BPTT run in
  models/cells_kernel.c, one thread per block of batch rows for all steps (`LSTMRecurrence`,
  `GRURecurrence`);
- dW_hh = sum_t dgh[t]^T h[t-1], db and the projection's gradients are single BLAS products again.

Equations (torch.nn docs; GRU as torch/cuDNN, the reset gate applied after W_hn):
    LSTM: i, f, g, o = sig, sig, tanh, sig of (gx + h_prev W_hh^T + b_hh);  c = f c_prev + i g;  h = o tanh(c)
    GRU:  r, z = sig(gx_r + hh_r), sig(gx_z + hh_z);  n = tanh(gx_n + r hh_n);  h = (1 - z) n + z h_prev,
          hh = h_prev W_hh^T + b_hh
The NumPy oracle is `loopynet.models.reference.lstm_forward` / `gru_forward` and their `*_bptt`.

`fused(rnn, like)` says whether the compiled path applies (CPU float32/float64, one layer, one direction
per call, the kernels loaded; `LOOPYNET_KERNEL=torch` turns it off); callers keep the torch module's own
forward as the fallback.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from loopynet.models import fast_kernel
from loopynet.models.simple_rnn import _distinct

Cell = nn.LSTM | nn.GRU


def fused(rnn: Cell, like: torch.Tensor) -> fast_kernel.Kernels | None:
    """The loaded kernels when `rnn` (a one-layer torch.nn.LSTM/GRU with biases) can run on them for inputs
    like `like` (CPU float32/float64 of the module's dtype), else None."""
    weight = rnn.weight_hh_l0
    if rnn.num_layers != 1 or not rnn.bias or getattr(rnn, "proj_size", 0) or not fast_kernel.Kernels.supports(like):
        return None
    if like.dtype != weight.dtype or weight.device != like.device:
        return None
    return fast_kernel.kernels()


def project_ids(rnn: Cell, ids: torch.Tensor, table: torch.Tensor, kernels: fast_kernel.Kernels,
                suffix: str = "") -> torch.Tensor:
    """gx (T, B, G*H) = table[ids].T-major @ W_ih^T + b_ih, computed once per distinct id and gathered.

    Args:
        ids: (B, T) int64 ids into table. Row 0 of a trainable table is padding: it gets no gradient.
        table: (V, E) vectors; frozen, or trainable (then its gradient is sparse, as with
            `F.embedding(..., sparse=True)`: one row per distinct id).
        suffix: "" or "_reverse": which direction's weights of a bidirectional module.

    Raises:
        IndexError: an id is negative or >= V.
    """
    B, T = ids.shape
    tokens, where = _distinct(ids.t().reshape(T * B).long(), table.shape[0], kernels)  # (U,), (T*B,)
    if table.requires_grad:
        rows = F.embedding(tokens, table, padding_idx=0, sparse=True)  # (U, E)
    else:
        rows = table.index_select(0, tokens)
    W_ih, b_ih = getattr(rnn, "weight_ih_l0" + suffix), getattr(rnn, "bias_ih_l0" + suffix)
    return torch.addmm(b_ih, rows, W_ih.t()).index_select(0, where).view(T, B, W_ih.shape[0])


def project(rnn: Cell, x: torch.Tensor, suffix: str = "") -> torch.Tensor:
    """gx (T, B, G*H) = x @ W_ih^T + b_ih for x (B, T, E), time-major, one BLAS product."""
    B, T, E = x.shape
    W_ih, b_ih = getattr(rnn, "weight_ih_l0" + suffix), getattr(rnn, "bias_ih_l0" + suffix)
    return torch.addmm(b_ih, x.transpose(0, 1).reshape(T * B, E), W_ih.t()).view(T, B, W_ih.shape[0])


def recur(rnn: Cell, gx: torch.Tensor, state, kernels: fast_kernel.Kernels, suffix: str = ""):
    """Run the recurrence of `rnn`'s direction `suffix` over gx (T, B, G*H), T >= 1.

    Args:
        state: None (zeros), h0 (1, B, H) for a GRU, (h0, c0) for an LSTM, as torch.nn takes them.

    Returns:
        (out (B, T, H), a view of time-major storage, and the final state as torch.nn returns it:
        h_n (1, B, H) for a GRU, (h_n, c_n) for an LSTM).
    """
    T, B, _ = gx.shape
    H = rnn.hidden_size
    W_hh, b_hh = getattr(rnn, "weight_hh_l0" + suffix), getattr(rnn, "bias_hh_l0" + suffix)
    zeros = gx.new_zeros(B, H)
    gx = gx.contiguous()
    if isinstance(rnn, nn.LSTM):
        h0, c0 = (zeros, zeros) if state is None else (state[0][0], state[1][0])
        h, c_n = LSTMRecurrence.apply(gx, W_hh, b_hh, h0.contiguous(), c0.contiguous(), kernels)
        return h.transpose(0, 1), (h[-1].unsqueeze(0), c_n.unsqueeze(0))
    h0 = zeros if state is None else state[0]
    h = GRURecurrence.apply(gx, W_hh, b_hh, h0.contiguous(), kernels)
    return h.transpose(0, 1), h[-1].unsqueeze(0)


def _dW_hh(dgh: torch.Tensor, h: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """sum_t dgh[t]^T h[t-1] (G*H, H) with h[-1] = h0: step 0's term plus one GEMM over steps 1..T-1."""
    T, B, GH = dgh.shape
    dW = dgh[0].t() @ h0
    if T > 1:
        dW.addmm_(dgh[1:].reshape((T - 1) * B, GH).t(), h[:-1].reshape((T - 1) * B, h.shape[2]))
    return dW


class LSTMRecurrence(torch.autograd.Function):
    """(h (T, B, H), c_n (B, H)) = the LSTM recurrence over gx (T, B, 4H) from h0, c0 (B, H), with W_hh (4H, H)
    and b_hh (4H,); forward and BPTT in C. Gradients for gx, W_hh, b_hh, h0 and c0."""

    @staticmethod
    def forward(ctx, gx, W_hh, b_hh, h0, c0, kernels):
        T, B, GH = gx.shape
        H = GH // 4
        W_hh = W_hh.contiguous()
        h, c = fast_kernel.buffers.empty((T, B, H), gx.dtype), fast_kernel.buffers.empty((T, B, H), gx.dtype)
        gates = fast_kernel.buffers.empty((T, B, GH), gx.dtype)
        kernels.lstm_forward(gx, W_hh, b_hh.contiguous(), h0, c0, h, c, gates)
        ctx.kernels = kernels
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(W_hh, h0, c0, h, c, gates)
        return h, c[-1].clone()

    @staticmethod
    def backward(ctx, dh, dc_n):
        W_hh, h0, c0, h, c, gates = ctx.saved_tensors
        dh = torch.zeros_like(h) if dh is None else dh.contiguous()
        dc_n = torch.zeros_like(h0) if dc_n is None else dc_n.contiguous()
        dgx = fast_kernel.buffers.empty(gates.shape, gates.dtype)  # (T, B, 4H)
        dh0, dc0 = torch.empty_like(h0), torch.empty_like(c0)
        ctx.kernels.lstm_backward(dh, dc_n, W_hh, c0, c, gates, dgx, dh0, dc0)
        db = dgx.view(-1, gates.shape[2]).sum(0)
        return dgx, _dW_hh(dgx, h, h0), db, dh0, dc0, None


class GRURecurrence(torch.autograd.Function):
    """h (T, B, H) = the GRU recurrence over gx (T, B, 3H) from h0 (B, H), with W_hh (3H, H) and b_hh (3H,);
    forward and BPTT in C. Gradients for gx, W_hh, b_hh and h0."""

    @staticmethod
    def forward(ctx, gx, W_hh, b_hh, h0, kernels):
        T, B, GH = gx.shape
        H = GH // 3
        W_hh = W_hh.contiguous()
        h, gates = fast_kernel.buffers.empty((T, B, H), gx.dtype), fast_kernel.buffers.empty((T, B, 4 * H), gx.dtype)
        kernels.gru_forward(gx, W_hh, b_hh.contiguous(), h0, h, gates)
        ctx.kernels = kernels
        ctx.save_for_backward(W_hh, h0, h, gates)
        return h

    @staticmethod
    def backward(ctx, dh):
        W_hh, h0, h, gates = ctx.saved_tensors
        T, B, H = h.shape
        dgx = fast_kernel.buffers.empty((T, B, 3 * H), h.dtype)
        dgh = fast_kernel.buffers.empty((T, B, 3 * H), h.dtype)
        dh0 = torch.empty_like(h0)
        ctx.kernels.gru_backward(dh.contiguous(), W_hh, h0, h, gates, dgx, dgh, dh0)
        return dgx, _dW_hh(dgh, h, h0), dgh.view(-1, 3 * H).sum(0), dh0, None
