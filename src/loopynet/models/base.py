"""The model contract: what the training loop (loopynet.train) and the tasks (loopynet.tasks) may ask
of a loopynet network beyond `torch.nn.Module`.

Every network subclasses `Network`, whose hooks do nothing; a network overrides only the hooks it
needs. `NetworkLike` states the same contract as a `typing.Protocol`, for type checking code that
accepts any network.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

import torch
from torch import nn


class Network(nn.Module):
    """Base class of loopynet's networks.

    padding_safe: whether trailing padding leaves the outputs unchanged (then batches may be trimmed
        to their longest document). False here: the safe answer.
    sparse_parameters(): parameters whose gradients are sparse (a fine-tuned embedding table updated
        only on the rows a batch uses); the loop gives them to `torch.optim.SparseAdam`. None here.
    resize_for(tensors): give buffers whose size depends on the training data (e.g. the n-gram table)
        the sizes of a saved model's tensors, before `load_state_dict`. Nothing to resize here.

    Every network also has `embed(...)`, the per-position input vectors (batch, time, features) its
    first recurrent layer reads, and `forward_vectors(x, lengths)`, its output computed from such vectors
    instead of ids (`forward_vectors(embed(ids), lengths) == forward(ids)`): the path attribution
    methods (gradients, integrated gradients) differentiate.
    """

    padding_safe: bool = False

    def forward_vectors(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (batch, time, features) input vectors, lengths (batch,) real steps -> the network's output."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward_vectors")

    def sparse_parameters(self) -> list[nn.Parameter]:
        return []

    def resize_for(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """No buffer depends on the data."""


class NetworkLike(Protocol):
    """The contract of `Network` as a protocol (the `torch.nn.Module` methods the loop uses included)."""

    padding_safe: bool
    training: bool

    def sparse_parameters(self) -> list[nn.Parameter]: ...

    def forward_vectors(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor: ...

    def resize_for(self, tensors: Mapping[str, torch.Tensor]) -> None: ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def state_dict(self, *args, **kwargs) -> dict: ...

    def load_state_dict(self, state_dict: Mapping, strict: bool = True, assign: bool = False): ...

    def train(self, mode: bool = True) -> NetworkLike: ...

    def eval(self) -> NetworkLike: ...
