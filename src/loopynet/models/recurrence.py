"""The sequential core of a SimpleRNN, with hand-written backpropagation through time.

Symbols (as in PyTorch's rnn docs): T time steps, B batch, H units.

Only `h[t] = tanh(a[t] + h[t-1] @ W_hh)` is sequential. Everything else in a SimpleRNN (the input
projection `a = x @ W_xh + b`, dW_xh, the head) is one large matrix product over all time steps, done
by autograd outside this module. Backward walks the steps in reverse (BPTT, NLP in Action 8.1.1-8.1.2):

    dh_next = 0
    for t = T-1 .. 0:
        da[t]   = (dh[t] + dh_next) * (1 - h[t]**2)
        dh_next = da[t] @ W_hh.T
    dW_hh = sum_t h[t-1].T @ da[t]          # one GEMM over all steps, applied once

which is the chapter's rule: corrections from every step are summed and applied once per batch.
"""

from __future__ import annotations

import torch


class SimpleRecurrence(torch.autograd.Function):
    """Autograd function for `h = recurrence(a, W_hh, h0)`.

    Shapes: a (T, B, H) pre-activations, W_hh (H, H), h0 (B, H) -> h (T, B, H).
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, W_hh: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        T = a.shape[0]
        h = torch.empty_like(a)  # (T, B, H)
        h_prev = h0
        for t in range(T):
            torch.addmm(a[t], h_prev, W_hh, out=h[t])
            torch.tanh_(h[t])
            h_prev = h[t]
        ctx.save_for_backward(h, W_hh, h0)
        return h

    @staticmethod
    def backward(ctx, dh: torch.Tensor):
        h, W_hh, h0 = ctx.saved_tensors
        T, B, H = h.shape
        da = torch.empty_like(h)  # (T, B, H)
        W_hh_T = W_hh.t()
        dh_next = torch.zeros_like(h0)
        for t in range(T - 1, -1, -1):
            g = dh[t] + dh_next  # (B, H)
            torch.mul(g, 1.0 - h[t] * h[t], out=da[t])
            dh_next = da[t] @ W_hh_T
        h_prev = torch.cat([h0.unsqueeze(0), h[:-1]], dim=0)  # (T, B, H): h[t-1]
        dW_hh = h_prev.reshape(T * B, H).t() @ da.reshape(T * B, H)  # (H, H)
        return da, dW_hh, dh_next


def simple_recurrence(a: torch.Tensor, W_hh: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """Run `h[t] = tanh(a[t] + h[t-1] @ W_hh)` over all steps, differentiable in a, W_hh and h0.

    Args:
        a: (T, B, H) input pre-activations `x @ W_xh + b`, time-major.
        W_hh: (H, H) recurrent kernel (Keras layout: `h_prev @ W_hh`).
        h0: (B, H) initial state; zeros when None.

    Returns:
        (T, B, H) hidden states for every step (Keras `return_sequences=True`).
    """
    a = a.contiguous()
    if h0 is None:
        h0 = a.new_zeros(a.shape[1], a.shape[2])
    return SimpleRecurrence.apply(a, W_hh, h0)
