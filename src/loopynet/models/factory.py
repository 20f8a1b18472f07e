"""Which network a ModelConfig means: the book's `BookClassifier` for the book's configuration
(cell rnn, flatten head, one layer, unidirectional, not stateful, frozen vectors, no n-gram part),
else `RecurrentClassifier`, wrapped in `NgramEnsemble` when `config.ngram` > 0.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from loopynet.config import ModelConfig
from loopynet.models.recurrent_classifier import RecurrentClassifier, check_config


def is_book(config: ModelConfig) -> bool:
    """Whether `config` is the book's network (NLP in Action 8.1.5), built by `BookClassifier`."""
    return (config.cell == "rnn" and config.head == "flatten" and config.layers == 1 and not config.bidirectional
            and not config.stateful and not config.train_embeddings and not config.ngram)


def build_classifier(config: ModelConfig, embeddings: torch.Tensor, seed: int = 0) -> torch.nn.Module:
    """The classifier network of `config` over the (V, E) `embeddings`, initialised from `seed`.

    Raises:
        ValueError: an invalid or unsupported combination of settings (the message names it).
    """
    check_config(config)
    if config.ngram < 0:
        raise ValueError(f"ngram must be >= 0, got {config.ngram}")
    if is_book(config):
        from loopynet.models.classifier import BookClassifier

        return BookClassifier(config, embeddings, seed=seed)
    if config.ngram:
        from loopynet.models.ngram import NgramEnsemble

        rnn_config = replace(config, ngram=0, rnn_maxlen=None, maxlen=config.rnn_maxlen or config.maxlen)
        return NgramEnsemble(config, RecurrentClassifier(rnn_config, embeddings, seed=seed), seed=seed)
    return RecurrentClassifier(config, embeddings, seed=seed)


def init_from(model: torch.nn.Module, saved, words: list[str], log=print) -> None:
    """Copy the weights of `saved` (a loaded `Classifier`) into `model`, or into its recurrent part
    when `model` is an `NgramEnsemble` and `saved` is not.

    Raises:
        ValueError: the vocabularies differ (other data options or vectors), or the networks differ.
    """
    if saved.vocab.words != words:
        raise ValueError(f"--init-from: its vocabulary ({len(saved.vocab):,} words) differs from this run's "
                         f"({len(words):,}); use the same data, vectors and tokenisation options")
    target = model
    source = saved.model
    if hasattr(model, "rnn") and not hasattr(source, "rnn"):
        target = model.rnn
    try:
        target.load_state_dict(source.state_dict())
    except RuntimeError as err:
        raise ValueError(f"--init-from: the saved network does not match this one ({err})") from None
    log(f"initialised {type(target).__name__} from the saved model")
