"""A seed ensemble of recurrent classifiers: K networks of the same configuration, each with its own
initial weights, fine-tuned vectors, batch order and dropout (seeds seed, seed + 1, ..., seed + K - 1),
trained one after the other; the ensemble's logit is the mean of theirs (averaging in logit space, as
Mesnil et al. 2014 average their models; the members are still purely recurrent).

Symbols: B batch, T time, E embedding dims, D = units * directions, K members.

`embed` concatenates the members' word vectors along the features (B, T, K*E) and `forward_vectors`
splits them again, so `forward_vectors(embed(ids), lengths) == forward(ids)`: gradient attributions
work on the ensemble as on one network. `encode` concatenates the members' top-layer outputs (B, T, K*D)
and `head` averages the members' heads over those slices.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from loopynet.config import ModelConfig
from loopynet.models.base import Network
from loopynet.models.recurrent_classifier import RecurrentClassifier


class SeedEnsemble(Network):
    """K = `config.members` `RecurrentClassifier`s of `config` (with members=1), member k initialised from
    seed + k; forward(ids (B, T)) -> the mean of their logits (B,).

    Each member holds its own copy of the (V, E) embedding table (fine-tuned separately with
    `train_embeddings`). Training (`loopynet.tasks.classification.members.fit_classifier`) fits member k
    alone with TrainConfig seed + k, so member 0 is exactly the single network of the same seed.
    """

    def __init__(self, config: ModelConfig, embeddings: torch.Tensor, seed: int = 0):
        super().__init__()
        if config.members < 2:
            raise ValueError(f"a seed ensemble needs members >= 2, got {config.members}")
        self.config = config
        single = replace(config, members=1)
        self.members = nn.ModuleList(RecurrentClassifier(single, embeddings.clone(), seed=seed + k)
                                     for k in range(config.members))

    @property
    def padding_safe(self) -> bool:
        return self.members[0].padding_safe

    @property
    def embeddings(self) -> torch.Tensor:
        """Member 0's (V, E) table: its row count is the vocabulary size (`NgramEnsemble` reads it)."""
        return self.members[0].embeddings

    def sparse_parameters(self) -> list[nn.Parameter]:
        return [p for member in self.members for p in member.sparse_parameters()]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> (B,) the mean of the members' logits."""
        return torch.stack([member(ids) for member in self.members]).mean(0)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> (B, T, K*E): each member's word vectors, member k in features k*E:(k+1)*E."""
        return torch.cat([member.embed(ids) for member in self.members], dim=2)

    def forward_vectors(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, T, K*E) as `embed` gives, lengths (B,) -> (B,) the mean of the members' logits."""
        parts = x.split(self.config.embedding_dims, dim=2)
        return torch.stack([m.forward_vectors(p, lengths) for m, p in zip(self.members, parts)]).mean(0)

    def encode(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (B, T) -> (the members' top-layer outputs concatenated (B, T, K*D), lengths (B,))."""
        outs = [member.encode(ids) for member in self.members]
        return torch.cat([out for out, _ in outs], dim=2), outs[0][1]

    def head(self, out: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """out (B, T, K*D) of `encode` -> (B,) the mean of each member's head on its slice (no dropout here,
        as in `RecurrentClassifier.head`)."""
        parts = out.split(out.shape[2] // len(self.members), dim=2)
        return torch.stack([m.head(p, lengths) for m, p in zip(self.members, parts)]).mean(0)

    def document_vector(self, out: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """out (B, T, K*D) of `encode` -> (B, K*D) the members' document vectors side by side."""
        parts = out.split(out.shape[2] // len(self.members), dim=2)
        return torch.cat([m.document_vector(p, lengths) for m, p in zip(self.members, parts)], dim=1)
