"""From a labelled corpus and a vector file to encoded train/validation parts (NLP in Action 8.1.5).

Seeded shuffle of the whole split, then the book's split point: the first (1 - val_split) for
training and the rest for validation (20,000 / 5,000 of IMDB's 25,000 training reviews).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from loopynet.config import DataConfig
from loopynet.data.report import DataReport, make_report
from loopynet.data.tokenize import TokenizerOptions
from loopynet.data.tokenized import load_tokenized
from loopynet.data.vectors import WordVectors
from loopynet.data.vocab import EncodedDocs, Vocabulary, build_vocabulary, encode
from loopynet.home import cache_dir


@dataclass
class TrainingData:
    """vocab + its (V, E) float32 `embeddings`, and the encoded `train` / `validation` parts."""

    vocab: Vocabulary
    embeddings: np.ndarray
    train: EncodedDocs
    validation: EncodedDocs
    class_names: list[str]
    reports: dict[str, DataReport]
    seconds: dict[str, float]


def tokenizer_options(config: DataConfig) -> TokenizerOptions:
    return TokenizerOptions(config.strip_html, config.split_periods, config.map_quotes)


def prepare_training_data(data: str | os.PathLike, vectors: WordVectors, config: DataConfig, seed: int,
                          split: str = "train", log: Callable[[str], None] = print) -> TrainingData:
    """Read (through the token cache), shuffle, slice (`config.limit`), split and encode `split`.

    The vocabulary is every word of the loaded documents that has a vector (no labels are used).

    Raises:
        CorpusError: unreadable data.
    """
    start = time.perf_counter()
    corpus = load_tokenized(data, split, config.encoding_errors, cache_dir(), tokenizer_options(config))
    corpus = corpus.subset(np.random.default_rng(seed).permutation(len(corpus))[: config.limit])
    seconds = {"read_and_tokenize": time.perf_counter() - start}
    vocab, embeddings = build_vocabulary(corpus, vectors, config.oov, config.vector_norm, config.word_weights,
                                         config.sif_a)
    split_point = int(len(corpus) * (1 - config.val_split))
    parts, reports = {}, {}
    for part, index in (("train", np.arange(split_point)), ("validation", np.arange(split_point, len(corpus)))):
        parts[part], oov = encode(corpus.subset(index), vocab)
        reports[part] = make_report(part, parts[part], oov, config.maxlen, corpus.class_names)
        log(reports[part].line())
    return TrainingData(vocab, embeddings, parts["train"], parts["validation"], corpus.class_names, reports, seconds)
