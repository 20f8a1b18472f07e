"""Dropout keep-masks for loopynet's compiled paths (the book network's head, the recurrent classifier's max
head): drawn in C by a counter-based generator seeded from torch's default generator, so `torch.manual_seed`
reproduces them and any thread count gives the same mask; without the kernels, `torch.rand`."""

from __future__ import annotations

import torch

from loopynet.models import fast_kernel


def dropout_mask(shape: torch.Size, p: float, kernels: fast_kernel.Kernels | None = None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """A uint8 keep-mask of `shape` on `device`: 1 with probability 1 - p, independently per element.

    With the compiled kernels, a counter-based hash seeded by one 63-bit draw from torch's default
    generator (models/kernel.c `dropout_mask`); otherwise `torch.rand(shape) >= p`.
    """
    if p >= 1.0:
        return torch.zeros(shape, dtype=torch.uint8, device=device)
    if kernels is None:
        return (torch.rand(shape, device=device) >= p).to(torch.uint8)
    mask = fast_kernel.buffers.empty(shape, torch.uint8)
    kernels.dropout_mask(mask, int(torch.randint(0, 2**63 - 1, ())), 1.0 - p)
    return mask
