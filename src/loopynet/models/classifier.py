"""The chapter's sentiment classifier (NLP in Action 8.1.5):
frozen word vectors -> SimpleRNN(units, return_sequences) -> Dropout -> Flatten -> Dense(1, sigmoid).

Symbols: B batch, T time (= maxlen), E embedding dims, H units, V vocabulary size.

The Dropout -> Flatten -> Dense(1) head is one step, `dropout_dense`, on the RNN's time-major (T, B, H)
states: `logits[b] = bias + sum_{t,j} keep[t,b,j] / (1 - p) * h[t,b,j] * kernel[t*H + j]`, the Keras
(B, T*H) flatten order without building the flattened copy. With the compiled kernels it is one C pass
forward and one backward (`DropoutDense`); otherwise plain PyTorch ops. On the CPU with the compiled
kernels, `BookClassifier.forward` runs the whole network as one autograd node (`CompiledBookNetwork`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from loopynet.config import ModelConfig
from loopynet.models import fast_kernel
from loopynet.models.base import Network
from loopynet.models.dropout import dropout_mask
from loopynet.models.simple_rnn import (SimpleRNN, _compiled_projection, _distinct, glorot_uniform_,
                                       projection_gradients)

# Called with each phase's name as it ends inside CompiledBookNetwork (benchmarks/bench_train.py's per-phase
# breakdown sets it; None: no calls).
phase_hook: Callable[[str], None] | None = None


class BookClassifier(Network):
    """The book's network over token ids.

    The word vectors live in a frozen (V, E) buffer `embeddings` whose row 0 is the zero padding
    vector; this replaces the book's pre-vectorised (docs, maxlen, 300) array with a lookup.

    forward(ids (B, T) int64) -> logits (B,): the sigmoid of a logit is P(positive class).
    Trainable parameters: E*H + H*H + H + T*H + 1 (37,551 for the book's E=300, H=50, T=400).

    Equivalent plain PyTorch (the same values; the fast path differs only in how it computes them)::

        h, _ = self.rnn(self.embeddings[ids])                       # (B, T, H)
        flat = nn.functional.dropout(h, p, self.training).reshape(B, T * H)
        logits = (flat @ self.dense_kernel + self.dense_bias)[:, 0]  # (B,)
    """

    def __init__(self, config: ModelConfig, embeddings: torch.Tensor, seed: int = 0):
        super().__init__()
        if embeddings.shape[1] != config.embedding_dims:
            raise ValueError(
                f"embedding matrix has {embeddings.shape[1]} dims, config says embedding_dims="
                f"{config.embedding_dims}"
            )
        generator = torch.Generator().manual_seed(seed)
        self.config = config
        self.register_buffer("embeddings", embeddings.float(), persistent=True)
        self.rnn = SimpleRNN(config.embedding_dims, config.units, generator)
        self.dropout = nn.Dropout(config.dropout)  # holds p; applied inside dropout_dense
        self.dense_kernel = nn.Parameter(glorot_uniform_(torch.empty(config.maxlen * config.units, 1), generator))
        self.dense_bias = nn.Parameter(torch.zeros(1))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) int64 with T = config.maxlen -> logits (B,).

        Raises:
            ValueError: T differs from the maxlen the dense head was built for.
            IndexError: an id is negative or >= V.
        """
        kernels = self._compiled_kernels(ids)
        if kernels is None or not ids.numel():
            out, _ = self.rnn.forward_ids(ids, self.embeddings)  # (B, T, H) view of time-major storage
            return self.head(out)
        B, T = ids.shape
        _check_dense(T, self.rnn.units, self.dense_kernel)
        tokens, where = _distinct(ids.t().reshape(T * B).long(), self.embeddings.shape[0], kernels)  # (U,), (T*B,)
        p = self.dropout.p if self.training else 0.0
        rnn = self.rnn
        return CompiledBookNetwork.apply(tokens, where, rnn.kernel, rnn.bias, rnn.recurrent_kernel, self.dense_kernel,
                                         self.dense_bias, self.embeddings, B, p, kernels)

    def _compiled_kernels(self, ids: torch.Tensor) -> fast_kernel.Kernels | None:
        """The loaded kernels when `CompiledBookNetwork` applies (CPU ids, a table `TokenProjection` takes,
        every weight of the table's dtype), else None."""
        weights = (self.rnn.kernel, self.rnn.bias, self.rnn.recurrent_kernel, self.dense_kernel, self.dense_bias)
        if ids.device.type != "cpu" or not _compiled_projection(self.embeddings, self.rnn.kernel) or any(
                w.dtype != self.embeddings.dtype or w.device.type != "cpu" for w in weights):
            return None
        return fast_kernel.kernels()

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> the word vectors (B, T, E) the SimpleRNN reads (zeros at padding)."""
        return torch.nn.functional.embedding(ids.long(), self.embeddings)

    def forward_vectors(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, T, E) input vectors with T = config.maxlen (e.g. `embed(ids)`) -> logits (B,); = forward(ids)
        for x = embed(ids). `lengths` is not used: the Flatten head reads every step, padding included."""
        out, _ = self.rnn(x)
        return self.head(out)

    def encode(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (B, T) -> (the SimpleRNN's outputs (B, T, H) for every step, lengths (B,) non-padding ids)."""
        out, _ = self.rnn.forward_ids(ids, self.embeddings)
        return out, (ids != 0).sum(1)

    def document_vector(self, out: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """out (B, T, H) -> (B, H) the state after each document's last real token (zeros when empty)."""
        from loopynet.models.recurrent_classifier import pool

        return pool(out, lengths, "last")

    def head(self, out: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """RNN outputs (B, T, H) -> logits (B,): Dropout -> Flatten -> Dense(1). `lengths` is unused (the
        signature of RecurrentClassifier.head): the Flatten head reads every step, padding included."""
        p = self.dropout.p if self.training else 0.0
        return dropout_dense(out.transpose(0, 1), self.dense_kernel, self.dense_bias, p)  # (B,)


def dropout_dense(h: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor, p: float,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """Dense(1)(Flatten(Dropout(p)(h))) for time-major states, as logits.

    Dropout keeps each element with probability 1 - p and scales kept ones by 1 / (1 - p), like
    `nn.Dropout` (p = 1 drops all). The random mask comes from torch's default generator (so
    `torch.manual_seed` reproduces it), drawn by `dropout_mask`.

    Args:
        h: (T, B, H) states, contiguous time-major.
        kernel: (T*H, 1) dense kernel, Keras flatten order (index t*H + j).
        bias: (1,) dense bias.
        p: drop probability in [0, 1]; 0 (or eval mode, decided by the caller) means no dropout.
        mask: optional (T, B, H) uint8 keep-mask (1 = kept) to use instead of drawing one (tests).

    Returns:
        (B,) logits.

    Raises:
        ValueError: p outside [0, 1], kernel without T*H rows, or a mask not shaped like h.
    """
    T, _, H = h.shape
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout p must be in [0, 1], got {p}")
    _check_dense(T, H, kernel)
    if mask is not None and mask.shape != h.shape:
        raise ValueError(f"dropout mask is {tuple(mask.shape)}, states are {tuple(h.shape)}")
    kernels = fast_kernel.kernels() if fast_kernel.Kernels.supports(h) and h.dtype == kernel.dtype else None
    if mask is None and p > 0.0:
        mask = dropout_mask(h.shape, p, kernels, h.device)
    scale = 1.0 if mask is None else (0.0 if p >= 1.0 else 1.0 / (1.0 - p))
    if kernels is None:
        if mask is not None:
            h = h * (mask.to(h.dtype) * scale)
        return torch.einsum("tbj,tj->b", h, kernel.reshape(T, H)) + bias
    mask = None if mask is None else mask.to(torch.uint8).contiguous()
    return DropoutDense.apply(h.contiguous(), kernel, bias, mask, scale, kernels)


def _check_dense(T: int, H: int, kernel: torch.Tensor) -> None:
    """Raise ValueError unless the dense kernel is (T*H, 1) for T steps of H units."""
    if kernel.shape != (T * H, 1):
        raise ValueError(f"dense kernel is {tuple(kernel.shape)} but the input has T={T} steps of H={H} units: "
                         f"expected ({T * H}, 1); pad or truncate ids to the model's maxlen")


class DropoutDense(torch.autograd.Function):
    """`dropout_dense` in compiled C: forward and backward are one pass each over h (T, B, H).

    Gradients: dh[t,b,j] = dz[b] * scale * mask * kernel[t*H+j]; dkernel[t*H+j] = scale * sum_b dz[b] *
    mask * h[t,b,j]; dbias = sum_b dz[b]. The mask (uint8) is saved, not a float copy of the output.
    """

    @staticmethod
    def forward(ctx, h, kernel, bias, mask, scale: float, kernels):
        kernel = kernel.contiguous()
        z = h.new_empty(h.shape[1])  # (B,)
        kernels.head_forward(h, mask, kernel, scale, float(bias), z)
        ctx.scale, ctx.kernels = scale, kernels
        ctx.save_for_backward(h, kernel, mask)
        return z

    @staticmethod
    def backward(ctx, dz):
        h, kernel, mask = ctx.saved_tensors
        dh, dkernel = fast_kernel.buffers.empty(h.shape, h.dtype), torch.empty_like(kernel)  # (T, B, H), (T*H, 1)
        ctx.kernels.head_backward(dz.contiguous(), h, mask, kernel, ctx.scale, dh, dkernel)
        return dh, dkernel, dz.sum().reshape(1), None, None, None


class CompiledBookNetwork(torch.autograd.Function):
    """BookClassifier.forward as one autograd node on the compiled kernels (models/kernel.c): the same values
    and gradients as TokenProjection -> CompiledRecurrence -> DropoutDense, with fewer passes over memory.

    Forward: the projection once per distinct token (U, H), the dropout mask (torch's generator, as
    `dropout_mask`), the recurrence reading each step's rows straight from the projection (no (T*B, H) gathered
    copy) and summing the head's logits while each step's states are in cache.
    Backward: BPTT computing the head's dh on the fly (no (T, B, H) dh) and summing the head's dkernel and dW_hh
    in the same pass, then the scatter of da into the distinct tokens, dkernel and dbias of the projection.
    Inputs: tokens (U,), where (T*B,) from `_distinct`; the SimpleRNN's kernel (E, H), bias (H,),
    recurrent_kernel (H, H); the dense kernel (T*H, 1) and bias (1,); the frozen table (V, E); batch size B,
    dropout p (0: none), the kernels.
    Returns logits (B,).
    """

    @staticmethod
    def forward(ctx, tokens, where, kernel, bias, W_hh, dense_kernel, dense_bias, table, B: int, p: float, kernels):
        H = W_hh.shape[0]
        T = where.shape[0] // B
        per_token = table.new_empty(tokens.shape[0], H)  # (U, H)
        kernels.project_rows(table, tokens, kernel.contiguous(), bias.contiguous(), per_token)
        _phase("embedding+projection")
        W_hh, dense_kernel = W_hh.contiguous(), dense_kernel.contiguous()
        mask = dropout_mask((T, B, H), p, kernels) if p > 0.0 else None
        scale = 1.0 if mask is None else (0.0 if p >= 1.0 else 1.0 / (1.0 - p))
        h, z = fast_kernel.buffers.empty((T, B, H), table.dtype), table.new_empty(B)
        kernels.rnn_forward(per_token, W_hh, table.new_zeros(B, H), h, where,
                            head=(mask, dense_kernel, scale, float(dense_bias), z))
        _phase("recurrence fwd")
        ctx.scale, ctx.kernels = scale, kernels
        ctx.save_for_backward(tokens, where, table, W_hh, h, dense_kernel, mask)
        return z

    @staticmethod
    def backward(ctx, dz):
        tokens, where, table, W_hh, h, dense_kernel, mask = ctx.saved_tensors
        kernels, scale, dz = ctx.kernels, ctx.scale, dz.contiguous()
        T, B, H = h.shape
        _phase("head bwd")
        d_dense, dW_hh = torch.empty_like(dense_kernel), torch.empty_like(W_hh)  # (T*H, 1), (H, H)
        da = fast_kernel.buffers.empty(h.shape, h.dtype)  # (T, B, H)
        kernels.rnn_backward(None, h, W_hh, da, h.new_empty(B, H), head=(dz, mask, dense_kernel, scale), dW=dW_hh,
                             dw=d_dense)  # h[-1] = 0: no dW_hh term at step 0
        _phase("recurrence bwd (+dW_hh)")
        dkernel, dbias = projection_gradients(kernels, da.view(T * B, H), where, tokens, table)
        _phase("projection bwd (scatter + dW_xh)")
        return None, None, dkernel, dbias, dW_hh, d_dense, dz.sum().reshape(1), None, None, None, None


def _phase(name: str) -> None:
    if phase_hook is not None:
        phase_hook(name)


def count_trainable(model: nn.Module) -> int:
    """Number of trainable scalar weights."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
