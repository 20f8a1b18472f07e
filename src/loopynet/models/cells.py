"""torch.nn.LSTM / torch.nn.GRU layers run on loopynet's fused C recurrences (models/cells_kernel.c).

Symbols: T time, B batch, E input features, H units, G gates (LSTM 4: i, f, g, o; GRU 3: r, z, n), D directions,
V vocabulary.

The parameters stay in the `torch.nn.LSTM` / `torch.nn.GRU` modules (same names, initialisation and saved
state as the pure-torch path); only the computation differs, in float order:

- the input projection `gx = x @ W_ih^T + b_ih` of all steps and both directions is one BLAS product
  (torch); for token ids it is computed once per distinct token of the batch (a batch of 64 IMDB reviews
  holds ~4,000 distinct ids in ~15,000 positions) and the C recurrence reads each step's row through
  the token's index; a trainable table gets a sparse gradient (only the rows the batch uses, for
  `torch.optim.SparseAdam`), as `F.embedding(..., sparse=True)` gives;
- the recurrence (each step's `h_prev @ W_hh^T`, the gates, the state update) and its BPTT run in C, one
  thread per block of batch rows for all steps; the backward direction of a bidirectional layer walks
  each row reversed within its length inside the kernel and writes its outputs in place, next to the
  forward direction's (no reversed copies, no concatenation);
- dW_hh = sum_t dgh[t]^T h[t-1], the biases' and the projection's gradients are BLAS products again.

Equations (torch.nn docs; GRU as torch/cuDNN, the reset gate applied after W_hn):
    LSTM: i, f, g, o = sig, sig, tanh, sig of (gx + h_prev W_hh^T + b_hh);  c = f c_prev + i g;  h = o tanh(c)
    GRU:  r, z = sig(gx_r + hh_r), sig(gx_z + hh_z);  n = tanh(gx_n + r hh_n);  h = (1 - z) n + z h_prev,
          hh = h_prev W_hh^T + b_hh
The NumPy oracle is `loopynet.models.reference.lstm_forward` / `gru_forward` and their `*_bptt`.

`fused(rnn, like)` says whether the compiled path applies (CPU float32/float64, one-layer modules with
biases, the kernels loaded; `LOOPYNET_KERNEL=torch` turns it off); callers keep torch.nn as the fallback.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from loopynet.models import fast_kernel
from loopynet.models.simple_rnn import _distinct

GATES = {"lstm": 4, "gru": 3}


def weights(rnn: nn.LSTM | nn.GRU, directions: int | None = None) -> list[tuple[torch.Tensor, ...]]:
    """[(W_ih, W_hh, b_ih, b_hh)] of a one-layer torch.nn.LSTM/GRU: its forward direction, then "_reverse"."""
    directions = directions or (2 if rnn.bidirectional else 1)
    return [tuple(getattr(rnn, f"{name}_l0{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            for suffix in ("", "_reverse")[:directions]]


def fused(rnn: nn.LSTM | nn.GRU, like: torch.Tensor) -> fast_kernel.Kernels | None:
    """The loaded kernels when `rnn` (a one-layer torch.nn.LSTM/GRU with biases) can run on them for inputs
    like `like` (CPU float32/float64 of the module's dtype), else None (the caller uses torch.nn). Tracing
    (ONNX export, TorchScript) always gets None: the exporters map torch.nn.LSTM/GRU onto their own operators
    and cannot see into compiled code."""
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return None
    weight = rnn.weight_hh_l0
    if rnn.num_layers != 1 or not rnn.bias or getattr(rnn, "proj_size", 0) or not fast_kernel.Kernels.supports(like):
        return None
    if like.dtype != weight.dtype or weight.device != like.device:
        return None
    return fast_kernel.kernels()


def run(cell: str, params: list[tuple[torch.Tensor, ...]], kernels: fast_kernel.Kernels, *,
        x: torch.Tensor | None = None, ids: torch.Tensor | None = None, table: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None, state=None):
    """One layer, one or two directions, on the fused recurrences.

    Args:
        cell: "lstm" or "gru". params: `weights(...)` of each direction (the second one runs each row
            reversed within its length and its outputs are put back in place, as `reverse_within_length`).
        x: (B, T, E) inputs, or ids (B, T) int64 with table (V, E): then the input projection is computed once
            per distinct id and gathered in C; a table that requires grad gets a sparse gradient (one row per
            distinct id, none for row 0, the padding), as `F.embedding(ids, table, padding_idx=0, sparse=True)`.
        lengths: (B,) real steps per row; needed with two directions.
        state: the forward direction's initial state as torch.nn takes it (h0 (1, B, H) for a GRU, (h0, c0)
            for an LSTM), or None (zeros); only for one direction.

    Returns:
        (out (B, T, directions * H), a view of time-major storage, and the forward direction's final state
        as torch.nn returns it: h_n (1, B, H) for a GRU, (h_n, c_n) for an LSTM).

    Raises:
        IndexError: an id is negative or >= V.
    """
    W_ih = torch.cat([p[0] for p in params]) if len(params) > 1 else params[0][0]  # (D * G * H, E)
    b_ih = torch.cat([p[2] for p in params]) if len(params) > 1 else params[0][2]
    if ids is None:
        B, T, E = x.shape
        where = None
        gx = torch.addmm(b_ih, x.transpose(0, 1).reshape(T * B, E), W_ih.t())  # (T*B, D*G*H), time-major
    else:
        B, T = ids.shape
        tokens, where = _distinct(ids.t().reshape(T * B).long(), table.shape[0], kernels)  # (U,), (T*B,)
        if table.requires_grad:
            rows = F.embedding(tokens, table, padding_idx=0, sparse=True)  # (U, E)
        else:
            rows = table.index_select(0, tokens)
        gx = torch.addmm(b_ih, rows, W_ih.t())  # (U, D*G*H)
    H = params[0][1].shape[1]
    zeros = gx.new_zeros(B, H)
    h0, c0 = zeros, zeros
    if state is not None:
        h0, c0 = (state[0][0], state[1][0]) if cell == "lstm" else (state[0], zeros)
    if len(params) > 1:
        lengths = lengths.to(torch.int64).contiguous()
    recurrent = [t for p in params for t in (p[1], p[3])]
    h, c_n = LayerRecurrence.apply(cell, kernels, (T, B), where, lengths, h0.contiguous(), c0.contiguous(),
                                   _dense(gx), *recurrent)
    h_n = h[-1, :, :H].unsqueeze(0)
    return h.transpose(0, 1), ((h_n, c_n.unsqueeze(0)) if cell == "lstm" else h_n)


def _dense(x: torch.Tensor) -> torch.Tensor:
    """x with row-major strides (the kernels take row strides from them; `.contiguous()` keeps any stride on
    a dimension of size 1)."""
    strides, step = [], 1
    for size in reversed(x.shape):
        strides.append(step)
        step *= size
    return x if x.stride() == tuple(reversed(strides)) else torch.empty_like(x, memory_format=torch.contiguous_format).copy_(x)


class LayerRecurrence(torch.autograd.Function):
    """h (T, B, D*H) = one layer's recurrences, D = 1 or 2 directions side by side, from gx (n, D*G*H) (row
    t*B + b, or where[t*B + b], is that step's input projection), the forward direction's h0, c0 (B, H), and
    each direction's W_hh (G*H, H) and b_hh (G*H,); also c_n (B, H), the forward direction's last cell state
    (zeros for a GRU). Forward and BPTT in C (cells_kernel.c); dW_hh = sum dgh^T hprev, the biases' and gx's
    gradients are BLAS products / sums here. Gradients for gx, h0, c0, W_hh and b_hh.
    """

    @staticmethod
    def forward(ctx, cell, kernels, shape, where, lengths, h0, c0, gx, *recurrent):
        T, B = shape
        D, H = len(recurrent) // 2, h0.shape[1]
        G = GATES[cell]
        take = fast_kernel.buffers.empty
        h = take((T, B, D * H), gx.dtype)
        saved = []
        for d in range(D):
            W_hh, b_hh = recurrent[2 * d].contiguous(), recurrent[2 * d + 1].contiguous()
            lens, zeros = (lengths, torch.zeros_like(h0)) if d else (None, None)
            hprev, gates = take((T, B, H), gx.dtype), take((T, B, 4 * H), gx.dtype)
            gx_d, h_d = gx[:, d * G * H:(d + 1) * G * H], h[:, :, d * H:(d + 1) * H]
            if cell == "lstm":
                c = take((T, B, H), gx.dtype)
                kernels.lstm_forward(gx_d, where, lens, W_hh, b_hh, zeros if d else h0, zeros if d else c0, h_d,
                                     hprev, c, gates)
            else:
                c = None
                kernels.gru_forward(gx_d, where, lens, W_hh, b_hh, zeros if d else h0, h_d, hprev, gates)
            saved += [W_hh, hprev, gates] + ([c] if c is not None else [])
        ctx.cell, ctx.kernels, ctx.D, ctx.rows = cell, kernels, D, gx.shape[0]
        ctx.save_for_backward(where, lengths, c0, *saved)
        ctx.set_materialize_grads(False)
        c_n = saved[3][T - 1].clone() if cell == "lstm" and T else torch.zeros_like(c0)
        return h, c_n

    @staticmethod
    @once_differentiable  # C kernels: a second derivative would silently be zero, so it is an error
    def backward(ctx, dh, dc_n):
        where, lengths, c0, *saved = ctx.saved_tensors
        per = 4 if ctx.cell == "lstm" else 3
        T, B, H = saved[1].shape
        G, D = GATES[ctx.cell], ctx.D
        dh = torch.zeros((T, B, D * H), dtype=c0.dtype) if dh is None else _dense(dh)
        dgx = fast_kernel.buffers.empty((T * B, D * G * H), c0.dtype)
        grads = []
        for d in range(D):
            W_hh, hprev, gates = saved[per * d:per * d + 3]
            dh_d, dgx_d = dh[:, :, d * H:(d + 1) * H], dgx[:, d * G * H:(d + 1) * G * H]
            dh0, lens = torch.empty_like(c0), lengths if d else None
            if ctx.cell == "lstm":
                dc0 = torch.empty_like(c0)
                dcT = dc_n.contiguous() if dc_n is not None and not d else torch.zeros_like(c0)
                c0_d = c0 if not d else torch.zeros_like(c0)
                ctx.kernels.lstm_backward(dh_d, dcT, lens, W_hh, c0_d, saved[per * d + 3], gates, dgx_d, dh0, dc0)
                dgh = dgx_d
            else:
                dc0 = None
                dgh = fast_kernel.buffers.empty((T * B, G * H), c0.dtype)
                ctx.kernels.gru_backward(dh_d, lens, W_hh, hprev, gates, dgx_d, dgh, dh0)
            grads.append((dh0, dc0, dgh.t() @ hprev.view(T * B, H), dgh.sum(0)))
        if where is None:
            dgx_in = dgx
        else:
            dgx_in = dgx.new_empty(ctx.rows, D * G * H)
            ctx.kernels.scatter_sum_rows(dgx, where, dgx_in)
        recurrent = [g for dh0, dc0, dW, db in grads for g in (dW, db)]
        return (None, None, None, None, None, grads[0][0], grads[0][1], dgx_in, *recurrent)
