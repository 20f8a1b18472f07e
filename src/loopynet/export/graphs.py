"""Traceable twins of loopynet's networks, holding the same weights, for `torch.onnx.export`.

The trained modules run the SimpleRNN recurrence in compiled C and the tagger's GRU/LSTM over packed
sequences; neither can be traced. Here the SimpleRNN becomes its `SimpleRNNTwin` (torch.nn.RNN, bias_hh frozen at zero: models/twin.py),
a bidirectional tagger RNN becomes two unidirectional ones, the backward one run on each sentence
reversed within its length (the same outputs on real tokens as the packed run), and a stateful
classifier runs in one pass (equal to its chunked inference: models/recurrent_classifier.py).

Symbols: B batch, T time, L characters per token, K tags, V vocabulary size.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import torch
from torch import nn

from loopynet.errors import UserError
from loopynet.models.classifier import BookClassifier
from loopynet.models.ensemble import SeedEnsemble
from loopynet.models.ngram import NgramEnsemble
from loopynet.models.recurrent_classifier import RecurrentClassifier, reverse_within_length
from loopynet.models.simple_rnn import SimpleRNN
from loopynet.models.tagger import SequenceTagger
from loopynet.models.twin import from_simple_rnn


class ExportError(UserError, ValueError):
    """A model that cannot be exported (the message says why and what to do instead)."""


class ClassifierGraph(nn.Module):
    """ids (B, T) int64, post-padded with 0 -> probability (B,) float32 = P(class_names[1]).

    T must be the model's maxlen for flatten heads; any T >= 1 for the padding-safe heads.

    Raises (at construction):
        ExportError: the n-gram mix of `--ngram` (its sorted-key lookup has no ONNX equivalent: serve it).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        if isinstance(model, NgramEnsemble):
            raise ExportError("the n-gram mix of --ngram (preset imdb-best) cannot be exported to ONNX: its n-gram "
                              "lookup has no ONNX equivalent; serve it instead (loopynet serve MODEL)")
        if isinstance(model, BookClassifier):
            self.net = BookGraph(model)
        elif isinstance(model, RecurrentClassifier):
            self.net = _traceable(model)
        elif isinstance(model, SeedEnsemble):
            raise ExportError("a seed ensemble (--members) cannot be exported to ONNX yet; serve it instead "
                              "(loopynet serve MODEL)")
        else:
            raise ExportError(f"cannot export a {type(model).__name__}")
        self.padding_safe = getattr(model, "padding_safe", False)
        self.eval()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(ids))


class BookGraph(nn.Module):
    """The book's network (`BookClassifier`) on the twin of its SimpleRNN: ids (B, T) int64, T = maxlen
    -> logits (B,), BookClassifier's plain-PyTorch equivalent in eval mode:
    `flatten(rnn(embeddings[ids])) @ dense_kernel + dense_bias` (the C head `dropout_dense` is not traceable).
    """

    def __init__(self, model: BookClassifier):
        super().__init__()
        self.register_buffer("embeddings", model.embeddings.detach().clone())
        self.rnn = from_simple_rnn(model.rnn)
        self.dense_kernel = nn.Parameter(model.dense_kernel.detach().clone())
        self.dense_bias = nn.Parameter(model.dense_bias.detach().clone())

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn.forward_ids(ids.long(), self.embeddings)  # (B, T, H)
        B, T, H = out.shape
        return (out.reshape(B, T * H) @ self.dense_kernel + self.dense_bias)[:, 0]


def _traceable(model: RecurrentClassifier) -> RecurrentClassifier:
    """A copy of `model` with every SimpleRNN replaced by its RNNTwin and stateful runs made one pass."""
    twin = copy.deepcopy(model)
    twin.config = replace(twin.config, stateful=False, chunk_len=None)
    for layer in twin.layers:
        for direction in layer:
            if isinstance(direction.rnn, SimpleRNN):
                direction.rnn = from_simple_rnn(direction.rnn)
    return twin


class TaggerGraph(nn.Module):
    """words, cases (B, T) int64, chars (B, T, L) int64, lengths (B,) int64 -> emissions (B, T, K) float32.

    Emissions at padding positions (t >= lengths[b]) are not defined; decoding reads only real tokens.
    """

    def __init__(self, model: SequenceTagger):
        super().__init__()
        self.tagger = model
        if model.config.cell == "rnn":
            backward = model.rnn_backward
            self.layers = nn.ModuleList([nn.ModuleList([from_simple_rnn(model.rnn)]
                                                       + ([from_simple_rnn(backward)] if backward is not None else []))])
        else:
            suffixes = ["", "_reverse"] if model.config.bidirectional else [""]
            self.layers = nn.ModuleList(nn.ModuleList(_one_direction(rnn, s) for s in suffixes)
                                        for rnn in [model.rnn, *model.upper])
        self.eval()

    def forward(self, words, cases, chars, lengths) -> torch.Tensor:
        out = self.tagger.step_inputs(words, cases, chars)  # (B, T, features)
        for directions in self.layers:  # stacked layers: each reads the previous one's outputs (B, T, D*H)
            x = out
            out = directions[0](x)[0]
            if len(directions) == 2:
                back = directions[1](reverse_within_length(x, lengths))[0]
                out = torch.cat([out, reverse_within_length(back, lengths)], dim=-1)
        return self.tagger.dense(out)


def _one_direction(rnn: nn.RNNBase, suffix: str) -> nn.RNNBase:
    """A unidirectional one-layer copy of one direction (`suffix` "" or "_reverse") of a torch GRU/LSTM."""
    single = type(rnn)(rnn.input_size, rnn.hidden_size, batch_first=True)
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(single, name).copy_(getattr(rnn, name + suffix))
    return single
