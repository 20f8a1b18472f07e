"""The chapter's sentiment classifier (NLP in Action 8.1.5):
frozen word vectors -> SimpleRNN(units, return_sequences) -> Dropout -> Flatten -> Dense(1, sigmoid).

Symbols: B batch, T time (= maxlen), E embedding dims, H units, V vocabulary size.
"""

from __future__ import annotations

import torch
from torch import nn

from loopynet.config import ModelConfig
from loopynet.models.simple_rnn import SimpleRNN, glorot_uniform_


class BookClassifier(nn.Module):
    """The book's network over token ids.

    The word vectors live in a frozen (V, E) buffer `embeddings` whose row 0 is the zero padding
    vector; this replaces the book's pre-vectorised (docs, maxlen, 300) array with a lookup.

    forward(ids (B, T) int64) -> logits (B,): the sigmoid of a logit is P(positive class).
    Trainable parameters: E*H + H*H + H + T*H + 1 (37,551 for the book's E=300, H=50, T=400).
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
        self.dropout = nn.Dropout(config.dropout)
        self.dense_kernel = nn.Parameter(glorot_uniform_(torch.empty(config.maxlen * config.units, 1), generator))
        self.dense_bias = nn.Parameter(torch.zeros(1))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embeddings[ids]  # (B, T, E)
        h, _ = self.rnn(x)  # (B, T, H)
        flat = self.dropout(h).reshape(ids.shape[0], -1)  # (B, T*H), Keras Flatten order
        return torch.addmm(self.dense_bias, flat, self.dense_kernel).squeeze(1)  # (B,)


def count_trainable(model: nn.Module) -> int:
    """Number of trainable scalar weights."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
