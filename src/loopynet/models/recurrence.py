"""The sequential core of a SimpleRNN, with hand-written backpropagation through time.

Symbols (as in PyTorch's rnn docs): T time steps, B batch, H units.

Only `h[t] = tanh(a[t] + h[t-1] @ W_hh)` is sequential. Everything else in a SimpleRNN (the input
projection `a = x @ W_xh + b`, dW_xh, the head) is one large matrix product over all time steps, done
by autograd outside this module. Backward walks the steps in reverse (BPTT, NLP in Action 8.1.1-8.1.2):

    dh_next = 0
    for t = T-1 .. 0:
        da[t]   = (dh[t] + dh_next) * (1 - h[t]**2)
        dh_next = da[t] @ W_hh.T
    dW_hh = sum_t h[t-1].T @ da[t]          # one GEMM over all steps (h[-1] = h0), applied once

which is the chapter's rule: corrections from every step are summed and applied once per batch.

Two implementations of the two loops, same math: `CompiledRecurrence` runs them in C (models/kernel.c,
via models/fast_kernel.py; CPU float32/float64) and `SimpleRecurrence` in PyTorch ops (any device and
dtype, and the fallback when no C compiler is available or `LOOPYNET_KERNEL=torch`).
"""

from __future__ import annotations

import torch

from loopynet.models import fast_kernel


def _dW_hh(h: torch.Tensor, h0: torch.Tensor, da: torch.Tensor) -> torch.Tensor:
    """sum_t h[t-1].T @ da[t] (H, H) with h[-1] = h0: one GEMM over steps 1..T-1 plus step 0's term."""
    T, B, H = h.shape
    dW = h0.t() @ da[0]
    if T > 1:
        dW.addmm_(h[:-1].reshape((T - 1) * B, H).t(), da[1:].reshape((T - 1) * B, H))
    return dW


class SimpleRecurrence(torch.autograd.Function):
    """Autograd function for `h = recurrence(a, W_hh, h0)` in PyTorch ops (a Python loop over T).

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
        T = h.shape[0]
        da = torch.empty_like(h)  # (T, B, H)
        W_hh_T = W_hh.t()
        dh_next = torch.zeros_like(h0)
        for t in range(T - 1, -1, -1):
            g = dh[t] + dh_next  # (B, H)
            torch.mul(g, 1.0 - h[t] * h[t], out=da[t])
            dh_next = da[t] @ W_hh_T
        return da, _dW_hh(h, h0, da), dh_next


class CompiledRecurrence(torch.autograd.Function):
    """Autograd function for `h = recurrence(a, W_hh, h0)` with both loops in compiled C.

    Shapes: a (T, B, H) contiguous, W_hh (H, H), h0 (B, H) -> h (T, B, H); CPU float32 or float64.
    `kernels` is the loaded `fast_kernel.Kernels`.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, W_hh: torch.Tensor, h0: torch.Tensor, kernels) -> torch.Tensor:
        W_hh, h0 = W_hh.contiguous(), h0.contiguous()
        h = fast_kernel.buffers.empty(a.shape, a.dtype)  # (T, B, H)
        kernels.rnn_forward(a, W_hh, h0, h)
        ctx.kernels = kernels
        ctx.save_for_backward(h, W_hh, h0)
        return h

    @staticmethod
    def backward(ctx, dh: torch.Tensor):
        h, W_hh, h0 = ctx.saved_tensors
        da, dh0 = fast_kernel.buffers.empty(h.shape, h.dtype), torch.empty_like(h0)  # (T, B, H), (B, H)
        dW_hh = torch.empty_like(W_hh)  # sum_t h[t-1].T @ da[t], h[-1] = h0, summed in the BPTT pass
        ctx.kernels.rnn_backward(dh.contiguous(), h, W_hh, da, dh0, dW=dW_hh, h0=h0)
        return da, dW_hh, dh0, None


def simple_recurrence(a: torch.Tensor, W_hh: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """Run `h[t] = tanh(a[t] + h[t-1] @ W_hh)` over all steps, differentiable in a, W_hh and h0.

    Uses the compiled kernel for CPU float32/float64 when it is available (see models/fast_kernel.py),
    else the PyTorch loop; both compute the same values and exact gradients.

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
    same = a.dtype == W_hh.dtype == h0.dtype and a.device == W_hh.device == h0.device
    kernels = fast_kernel.kernels() if same and fast_kernel.Kernels.supports(a) else None
    if kernels is None:
        return SimpleRecurrence.apply(a, W_hh, h0)
    return CompiledRecurrence.apply(a, W_hh, h0, kernels)
