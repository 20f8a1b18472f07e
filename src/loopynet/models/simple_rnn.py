"""Keras-compatible SimpleRNN layer (one bias, Keras initialisers) in PyTorch.

Symbols: B batch, T time, E embedding dims (features), H units.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from loopynet.models import cudnn_rnn, fast_kernel
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
    flat = torch.randn(max(rows, cols), min(rows, cols), generator=generator, dtype=weight.dtype, device=weight.device)
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

    The input projection over all steps is one matrix product; the sequential part runs in compiled C
    for CPU float32/float64 when available, else in a PyTorch loop (see models/recurrence.py). On any
    other device (CUDA) the layer runs as its `torch.nn.RNN` twin (models/cudnn_rnn.py: cuDNN).
    `forward_ids` takes token ids and a vector table instead of vectors.
    """

    def __init__(self, embedding_dims: int, units: int, generator: torch.Generator | None = None):
        super().__init__()
        self.embedding_dims = embedding_dims
        self.units = units
        self.kernel = nn.Parameter(glorot_uniform_(torch.empty(embedding_dims, units), generator))
        self.recurrent_kernel = nn.Parameter(orthogonal_(torch.empty(units, units), generator))
        self.bias = nn.Parameter(torch.zeros(units))

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, E), h0 (B, H) or None (zeros) -> (out (B, T, H), last (B, H))."""
        if x.device.type != "cpu":
            return cudnn_rnn.run_as_twin(self, x, h0)
        B, T, E = x.shape
        a = torch.addmm(self.bias, x.transpose(0, 1).reshape(T * B, E), self.kernel)  # (T*B, H)
        return self._recur(a.view(T, B, self.units), h0)

    def forward_ids(self, ids: torch.Tensor, table: torch.Tensor,
                    h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward(table[ids], h0)` for token ids, computing the input projection once per distinct token.

        A batch holds far fewer distinct tokens than positions (IMDB, batch 32 x 400: ~1,930 distinct ids
        of 12,800 positions, padding included), so `table[u] @ kernel + bias` over the distinct ids u,
        gathered back to every position, is the same sum of products as the per-position projection with
        ~85% fewer multiply-adds, forward and in the kernel's gradient (each position's correction is
        summed into its token's row first). With the compiled kernels the rows of `table` are gathered
        inside the C projection; otherwise `torch.unique` and `addmm`.

        Args:
            ids: (B, T) integer indices into `table`.
            table: (V, E) word vectors (frozen or not: gradients reach it if it requires them).
            h0: (B, H) initial state; zeros when None.

        Returns:
            out (B, T, H), a view of time-major (T, B, H) storage, and last (B, H).

        Raises:
            IndexError: an id is negative or >= V.
        """
        if ids.device.type != "cpu":
            return cudnn_rnn.run_as_twin(self, torch.nn.functional.embedding(ids, table), h0)
        B, T = ids.shape
        kernels = fast_kernel.kernels() if _compiled_projection(table, self.kernel) else None
        tokens, where = _distinct(ids.t().reshape(T * B).long(), table.shape[0], kernels)  # (U,), (T*B,)
        if kernels is None:
            a = torch.addmm(self.bias, table[tokens], self.kernel).index_select(0, where)  # (U, H) -> (T*B, H)
        else:
            a = TokenProjection.apply(tokens, where, self.kernel, self.bias, table, kernels)  # (T*B, H)
        return self._recur(a.view(T, B, self.units), h0)

    def _recur(self, a: torch.Tensor, h0: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        h = simple_recurrence(a, self.recurrent_kernel, h0)  # (T, B, H)
        return h.transpose(0, 1), h[-1]


def _distinct(ids: torch.Tensor, V: int, kernels: fast_kernel.Kernels | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens (U,), where (n,)) with tokens[where] == ids (n,) int64: the C pass over a (V,) slot array
    when it is cheap (V <= 64 n), else `torch.unique`.

    Raises:
        IndexError: an id is outside [0, V).
    """
    if kernels is not None and V <= 64 * ids.numel():
        return kernels.unique_ids(ids.contiguous(), V)
    tokens, where = torch.unique(ids, return_inverse=True)
    if len(tokens) and (tokens[0] < 0 or tokens[-1] >= V):
        raise IndexError(f"token id out of range [0, {V}): min {int(tokens[0])}, max {int(tokens[-1])}")
    return tokens, where


def _compiled_projection(table: torch.Tensor, kernel: torch.Tensor) -> bool:
    """Whether `TokenProjection` applies: a contiguous CPU float32/float64 table of the kernel's dtype that
    needs no gradient (the C backward computes dkernel and dbias only)."""
    return (fast_kernel.Kernels.supports(table) and table.dtype == kernel.dtype and table.is_contiguous()
            and not table.requires_grad)


class TokenProjection(torch.autograd.Function):
    """a (n, H) = bias + table[tokens[where]] @ kernel, computed once per distinct token in C (the rows of
    the table gathered inside the kernel) and copied to the n positions.

    Gradients (`projection_gradients`): dkernel and dbias; none for the (frozen) table or the ids.
    `kernels` is the loaded `fast_kernel.Kernels`; `a` comes from its buffer pool.
    """

    @staticmethod
    def forward(ctx, tokens, where, kernel, bias, table, kernels):
        per_token = table.new_empty(tokens.shape[0], kernel.shape[1])  # (U, H)
        kernels.project_rows(table, tokens, kernel.contiguous(), bias.contiguous(), per_token)
        a = fast_kernel.buffers.empty((where.shape[0], kernel.shape[1]), table.dtype)  # (n, H)
        torch.index_select(per_token, 0, where, out=a)
        ctx.kernels = kernels
        ctx.save_for_backward(tokens, where, table)
        return a

    @staticmethod
    def backward(ctx, da):
        tokens, where, table = ctx.saved_tensors
        dkernel, dbias = projection_gradients(ctx.kernels, da.contiguous(), where, tokens, table)
        return None, None, dkernel, dbias, None, None


def projection_gradients(kernels: fast_kernel.Kernels, da: torch.Tensor, where: torch.Tensor, tokens: torch.Tensor,
                         table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(dkernel (E, H), dbias (H,)) of the token projection `a = bias + table[tokens[where]] @ kernel` from da
    (n, H) contiguous: each position's gradient summed into its token's row first (d_per_token (U, H), in C),
    then dkernel = table[tokens]^T d_per_token (in C) and dbias = d_per_token.sum(0)."""
    H = da.shape[1]
    d_per_token = da.new_empty(tokens.shape[0], H)  # (U, H)
    kernels.scatter_sum_rows(da, where, d_per_token)
    dkernel = table.new_zeros(table.shape[1], H)  # (E, H)
    kernels.accumulate_xt_d(table, tokens, d_per_token, dkernel)
    return dkernel, d_per_token.sum(0)
