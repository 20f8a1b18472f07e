"""Which network a ModelConfig means: the book's `BookClassifier` for the book's configuration
(cell rnn, flatten head, one layer, unidirectional, not stateful, frozen vectors, no n-gram part),
else `RecurrentClassifier` (a `SeedEnsemble` of `config.members` of them when members > 1), wrapped in
`NgramEnsemble` when `config.ngram` > 0.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from loopynet.config import ModelConfig, check_model
from loopynet.models.base import Network
from loopynet.models.recurrent_classifier import RecurrentClassifier


def is_book(config: ModelConfig) -> bool:
    """Whether `config` is the book's network (NLP in Action 8.1.5), built by `BookClassifier`."""
    return (config.cell == "rnn" and config.head == "flatten" and config.layers == 1 and not config.bidirectional
            and not config.stateful and not config.train_embeddings and not config.ngram and config.members == 1)


def build_classifier(config: ModelConfig, embeddings: torch.Tensor, seed: int = 0) -> Network:
    """The classifier network of `config` over the (V, E) `embeddings`, initialised from `seed`.

    Raises:
        ConfigError: an invalid or unsupported combination of settings (the message names it).
    """
    check_model(config)
    if is_book(config):
        from loopynet.models.classifier import BookClassifier

        return BookClassifier(config, embeddings, seed=seed)
    if config.ngram:
        from loopynet.models.ngram import NgramEnsemble

        rnn_config = replace(config, ngram=0, rnn_maxlen=None, maxlen=config.rnn_maxlen or config.maxlen)
        return NgramEnsemble(config, _recurrent(rnn_config, embeddings, seed))
    return _recurrent(config, embeddings, seed)


def _recurrent(config: ModelConfig, embeddings: torch.Tensor, seed: int) -> Network:
    if config.members > 1:
        from loopynet.models.ensemble import SeedEnsemble

        return SeedEnsemble(config, embeddings, seed=seed)
    return RecurrentClassifier(config, embeddings, seed=seed)
