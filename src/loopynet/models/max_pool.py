"""The recurrent classifier's "max" head, Dropout -> max over each row's real time steps, fused in C
(models/pool_kernel.c).

Written with torch ops the head draws a (B, T, D) Bernoulli tensor (torch's CPU `bernoulli_`, ~5 ns an element),
multiplies it in, fills the padding with -inf, reduces, and in the backward pass builds dense (B, T, D)
gradients for each of those steps: on imdb-rnn's shape (batch 64, up to 400 steps, 128 features) about a fifth
of a fused training step. Here the keep-mask is the counter-based one of `dropout.dropout_mask` (the
compiled kernels' generator, seeded from torch's default generator, so `torch.manual_seed` reproduces it), one
pass reads the layer's outputs in place (time-major or batch-first) and keeps each feature's maximum, the step
it came from and the dropout factor there; the backward pass writes B x D values into a zeroed gradient.

Same distribution as `nn.Dropout` (each element kept with probability 1 - p, scaled by 1 / (1 - p)) and the
same maximum over the real positions as `recurrent_classifier.pool(..., "max")`; the masks are other draws
(another generator), and at exact ties the gradient goes to the first step reaching the maximum (as
`torch.max(dim)`'s) instead of being split (`amax`'s).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from loopynet.models import fast_kernel
from loopynet.models.dropout import dropout_mask


def fused_kernels(out: torch.Tensor) -> fast_kernel.Kernels | None:
    """The loaded kernels when `out` (B, T, D) can be pooled in C (CPU float32/float64, features contiguous,
    fewer than 2**31 steps and 2**32 elements, not being traced for an export), else None."""
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or not fast_kernel.Kernels.supports(out):
        return None
    if out.stride(2) != 1 or out.shape[1] >= 2**31 or out.numel() >= 2**32:
        return None
    return fast_kernel.kernels()


def dropout_max_pool(out: torch.Tensor, lengths: torch.Tensor, p: float, kernels: fast_kernel.Kernels) -> torch.Tensor:
    """Features (B, D) = max over t < lengths[b] of Dropout(p)(out)[b, t] (zeros for a row without real steps).

    Args:
        out: (B, T, D) recurrent outputs; any time and batch strides, features contiguous (`fused_kernels`).
        lengths: (B,) real steps of each row (padding after them is never read).
        p: drop probability in [0, 1); 0 (evaluation) applies no dropout.
        kernels: `fused_kernels(out)`.

    Raises:
        ValueError: p outside [0, 1).
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout p must be in [0, 1) for the max head, got {p}")
    B, T, D = out.shape
    mask = dropout_mask((T, B, D), p, kernels) if p > 0 else None
    return DropoutMaxPool.apply(out, lengths.to(torch.int64).contiguous(), mask, 1.0 / (1.0 - p), kernels)


class DropoutMaxPool(torch.autograd.Function):
    """pooled (B, D) from out (B, T, D), lengths (B,) int64, mask (T, B, D) uint8 or None, scale; gradient for out
    only (d_out is zero but at each feature's maximum, with out's strides)."""

    @staticmethod
    def forward(ctx, out, lengths, mask, scale, kernels):
        B, _, D = out.shape
        pooled = out.new_empty(B, D)
        arg, gain = torch.empty((B, D), dtype=torch.int32), out.new_empty(B, D)
        kernels.max_pool_forward(out.transpose(0, 1), mask, scale, lengths, pooled, arg, gain)
        ctx.save_for_backward(arg, gain)
        ctx.kernels, ctx.geometry = kernels, (out.shape, out.stride(), out.dtype)
        return pooled

    @staticmethod
    @once_differentiable  # C kernels: a second derivative would silently be zero, so it is an error
    def backward(ctx, d_pooled):
        arg, gain = ctx.saved_tensors
        shape, stride, dtype = ctx.geometry
        d_out = torch.empty_strided(shape, stride, dtype=dtype).zero_()
        ctx.kernels.max_pool_backward(d_pooled.contiguous(), arg, gain, d_out.transpose(0, 1))
        return d_out, None, None, None, None
