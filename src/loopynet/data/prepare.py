"""From a labelled corpus and a vector file to encoded train/validation parts (NLP in Action 8.1.5).

Seeded shuffle of the whole split, then a stratified version of the book's split point: of each
class's documents, in shuffled order, the first (1 - val_split) train and the rest validate, so
both parts keep the corpus' class shares (20,000 / 5,000 of IMDB's 25,000 training reviews, 2,500
of each class validating). The book split the shuffled list at one point, which left the
validation part's class shares to chance (10/15/5/16 positives across seeds on a small imbalanced set).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from loopynet.config import DataConfig
from loopynet.data.corpus import CorpusError
from loopynet.data.report import DataReport, hidden_report, make_report
from loopynet.data.tokenize import TokenizerOptions
from loopynet.data.tokenized import load_tokenized
from loopynet.data.vectors import VectorsError, WordVectors
from loopynet.data.vocab import EncodedDocs, Vocabulary, build_vocabulary, encode, words_to_train
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
    read: dict  # what reading skipped (`report.hidden_report`)


def _check_two_classes(report: DataReport, data, config: DataConfig) -> None:
    """Raise CorpusError when the training part holds one class only (e.g. `--limit 2`): the model could
    not learn to tell the classes apart, and its accuracy would mean nothing."""
    if len(report.class_counts) < 2:
        (name, count), = report.class_counts.items()
        raise CorpusError(f"--data {data}: the training part holds one class only ({name!r}: {count:,} documents, "
                          f"after --limit {config.limit} and --val-split {config.val_split}); the classifier needs "
                          "documents of both classes: use a larger --limit")


def tokenizer_options(config: DataConfig) -> TokenizerOptions:
    return TokenizerOptions(config.strip_html, config.split_periods, config.map_quotes, config.whole_urls)


def prepare_training_data(data: str | os.PathLike, vectors: WordVectors, config: DataConfig, maxlen: int, seed: int,
                          split: str = "train", log: Callable[[str], None] = print) -> TrainingData:
    """Read (through the token cache), shuffle, slice (`config.limit`), split and encode `split`; the data
    reports count what the model's `maxlen` (tokens per document, ModelConfig.maxlen) cuts.

    The vocabulary is every word of the loaded documents that has a vector (no labels are used), then, with
    `config.train_words_min_count`, the training part's frequent words without one (`words_to_train`).

    Raises:
        CorpusError: unreadable data, not exactly 2 classes (the model has one sigmoid output), or no
            training document left after `limit` and `val_split`.
        VectorsError: no training token has a vector (every training document would be empty).
    """
    start = time.perf_counter()
    corpus = load_tokenized(data, split, config.encoding_errors, cache_dir(), tokenizer_options(config))
    read = hidden_report(data, corpus.hidden, log)
    if len(corpus.class_names) != 2:
        raise CorpusError(f"--data {data}: split {split!r} has {len(corpus.class_names)} classes {corpus.class_names}; "
                          "the classifier has one sigmoid output and needs exactly 2 class folders")
    corpus = corpus.subset(np.random.default_rng(seed).permutation(len(corpus))[: config.limit])
    seconds = {"read_and_tokenize": time.perf_counter() - start}
    train_index, validation_index = stratified_split(np.asarray(corpus.labels), config.val_split)
    extra = words_to_train(corpus.subset(train_index), vectors, config.train_words_min_count)
    vocab, embeddings = build_vocabulary(corpus, vectors, config.oov, config.vector_norm, config.word_weights,
                                         config.sif_a, extra)
    split_point = len(train_index)
    if split_point == 0:
        raise CorpusError(f"--data {data}: no training document left ({len(corpus)} documents, "
                          f"val_split {config.val_split}); use more documents (--limit) or a smaller --val-split")
    parts, reports = {}, {}
    for part, index in (("train", train_index), ("validation", validation_index)):
        subset = corpus.subset(index)
        parts[part], oov = encode(subset, vocab)
        reports[part] = make_report(part, parts[part], oov, maxlen, corpus.class_names, subset)
        log(reports[part].line())
    _check_two_classes(reports["train"], data, config)
    if reports["train"].empty_documents == split_point:
        raise VectorsError(f"no token of the {split_point:,} training documents has a vector in --vectors "
                           f"{vectors.fingerprint.get('name', '')} (every document would be empty): is it a "
                           "vector file for this language and casing?")
    _warn_if_imbalanced(parts["train"].labels, corpus.class_names, log)
    return TrainingData(vocab, embeddings, parts["train"], parts["validation"], corpus.class_names, reports, seconds,
                        read)


MINORITY_WARNING = 0.30  # a class under 30% of the training documents gets a warning


def stratified_split(labels: np.ndarray, val_split: float) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) positions into `labels` (already in shuffled order): of each class, the first
    int(n_c * (1 - val_split)) train and the rest validate; each part keeps the shuffled order."""
    train, validation = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        cut = int(len(members) * (1 - val_split))
        train.append(members[:cut])
        validation.append(members[cut:])
    return (np.sort(np.concatenate(train or [np.array([], dtype=int)])),
            np.sort(np.concatenate(validation or [np.array([], dtype=int)])))


def _warn_if_imbalanced(labels: np.ndarray, class_names: list[str], log: Callable[[str], None]) -> None:
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
    share = counts.min() / max(counts.sum(), 1)
    if share < MINORITY_WARNING:
        minority = class_names[int(counts.argmin())]
        log(f"warning: class {minority!r} is {share:.1%} of the training documents ({counts.min():,} of "
            f"{counts.sum():,}); accuracy alone will mislead: read evaluate's balanced_accuracy, roc_auc and "
            "baseline_accuracy, and consider train --threshold auto")
