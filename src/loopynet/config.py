"""Configuration dataclasses. Model and training defaults are the book's numbers (NLP in Action ch. 8,
sections 8.1.5-8.4); the data pipeline's defaults are explained in DataConfig."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


class ConfigError(ValueError):
    """Settings that are invalid or do not work together (e.g. --stateful with --bidirectional)."""


VECTOR_NORMS = ("none", "unit", "abtt")
WORD_WEIGHTS = ("none", "sif")
VECTOR_SCALES = ("none", "unit", "standard")
CELLS = ("rnn", "gru", "lstm")
HEADS = ("flatten", "last", "mean", "max")


@dataclass(frozen=True)
class DataConfig:
    """How text becomes token ids.

    maxlen: tokens kept per document (book 8.1.5: 400); the first `maxlen` in-vocabulary tokens are
        kept and shorter documents are padded at the end with zero vectors (the book's `pad_trunc`).
    val_split: fraction of the shuffled training split held out for validation (book: 0.2,
        i.e. 20,000 / 5,000 of IMDB's 25,000 training reviews).
    oov: "drop" (book: tokens without a vector are silently skipped) or "unk" (they map to one
        zero-initialised unknown vector).
    encoding_errors: "strict" (a non-UTF-8 file stops the run) or "replace".
    limit: use only the first N documents after the seeded shuffle (None = all).
    strip_html, split_periods, map_quotes: Treebank clean-ups that raise vector coverage (see
        `loopynet.data.tokenize`; the data README's advice for the shared vectors). Off = the book.
    vector_norm: "none" (the book: vectors as stored), "unit" (each word vector scaled to L2 norm 1,
        gensim's normed vectors) or "abtt" (all-but-the-top: the table's mean and its top E // 100
        principal directions removed, Mu & Viswanath 2018, then L2 norm 1; see data.vocab).
    word_weights: "none" (the book) or "sif": after `vector_norm`, each word's vector is multiplied by
        its smooth inverse frequency a / (a + p(w)), p(w) = the word's share of the corpus' tokens,
        a = `sif_a`, scaled so the rarest word keeps weight 1 (Arora, Liang & Ma, "A Simple but
        Tough-to-Beat Baseline for Sentence Embeddings", ICLR 2017, eq. 1 / section 4.1.1: a = 1e-3
        to 1e-4 work best). Frequent words ("the", ",", "I") get short vectors, rare ones keep ~1.

    The clean-ups, "abtt" and "sif" are the defaults: with the shared stand-in vectors (spaCy 3.7.1
    "md", row norms ~48 against word2vec's ~2-3, 67,628 words on 19,181 distinct rows) they bring the
    book's model to the book's accuracy and above (benchmarks/book_seeds.py, README "Results of the
    main job").
    `BOOK_DATA` is the chapter's pipeline verbatim (`loopynet train --preset book`).
    """

    maxlen: int = 400
    val_split: float = 0.2
    oov: str = "drop"
    encoding_errors: str = "strict"
    limit: int | None = None
    strip_html: bool = True
    split_periods: bool = True
    map_quotes: bool = True
    vector_norm: str = "abtt"
    word_weights: str = "sif"
    sif_a: float = 1e-3


BOOK_DATA = {"strip_html": False, "split_periods": False, "map_quotes": False, "vector_norm": "none",
             "word_weights": "none"}


@dataclass(frozen=True)
class ModelConfig:
    """The book's network: SimpleRNN(units, tanh, return_sequences) -> Dropout -> Flatten -> Dense(1, sigmoid).

    embedding_dims comes from the vector file (300 for the book's word2vec).
    """

    units: int = 50
    dropout: float = 0.2
    embedding_dims: int = 300
    maxlen: int = 400
    # Beyond the book (loopynet.models.recurrent_classifier); the defaults are the book's model.
    # cell: "rnn" (Keras SimpleRNN, one bias) | "gru" | "lstm" (torch.nn.GRU/LSTM, two biases);
    # layers: stacked cells, `dropout` between them; bidirectional: forward and backward outputs
    # concatenated, the backward direction reversed within each review's length; head: "flatten"
    # (book) | "last" | "mean" | "max" (padding-safe); stateful: run documents in chunks of
    # chunk_len tokens carrying the state (truncated BPTT); train_embeddings: fine-tune the vectors;
    # ngram: 0 = off, n = add a naive-Bayes-weighted 1..n-gram logistic model (loopynet.models.ngram).
    cell: str = "rnn"
    layers: int = 1
    bidirectional: bool = False
    head: str = "flatten"
    stateful: bool = False
    chunk_len: int | None = None
    train_embeddings: bool = False
    ngram: int = 0
    rnn_maxlen: int | None = None  # with ngram: tokens the recurrent part reads (None = maxlen)


@dataclass(frozen=True)
class TrainConfig:
    """Training loop settings (book 8.2-8.3: RMSprop, binary cross-entropy, batch 32, 2 epochs).

    RMSprop constants are Keras' defaults: lr 1e-3, rho 0.9, epsilon 1e-7.
    optimizer: "rmsprop" (book) or "adam". clip_norm: clip each batch's global gradient norm
    (None = off, book). patience: stop after this many epochs without a lower val_loss (None = off,
    book); restore_best then puts back the best epoch's weights (Keras' EarlyStopping). monitor: the
    validation metric early stopping and best-weights selection watch (val_loss; e.g. val_f1 for the tagger).
    lr_decay: epoch e (1-based) trains with lr / (1 + lr_decay * (e - 1)) (Ma & Hovy 2016, sec. 3.1; 0 = constant).
    ema_decay: validate, select and return an exponential moving average of the weights, updated after
        every batch as avg = decay * avg + (1 - decay) * weights (Polyak averaging; torch.optim.swa_utils;
        0 = off, the plain weights).
    """

    batch_size: int = 32
    epochs: int = 2
    lr: float = 1e-3
    rho: float = 0.9
    epsilon: float = 1e-7
    seed: int = 0
    optimizer: str = "rmsprop"
    clip_norm: float | None = None
    patience: int | None = None
    restore_best: bool = True
    monitor: str = "val_loss"
    lr_decay: float = 0.0
    ema_decay: float = 0.0


@dataclass(frozen=True)
class NgramConfig:
    """How the n-gram part of `--ngram N` models is fitted (loopynet.tasks.classification.ngram): a logistic
    regression on naive-Bayes-scaled binary n-gram features (Wang & Manning 2012), Adam with `lr` and
    `weight_decay` (L2), `epochs` passes in batches of `batch_size` documents, the epoch with the lowest
    validation loss kept; an n-gram is a feature when at least `min_df` training documents contain it."""

    min_df: int = 2
    epochs: int = 4
    lr: float = 0.01
    weight_decay: float = 0.0
    batch_size: int = 128


@dataclass(frozen=True)
class TaggerDataConfig:
    """How CoNLL sentences become ids (the tagger, loopynet.tasks.tagging).

    data: the CoNLL folder the model was trained on (used by `evaluate` unless overridden).
    lowercase_fallback: look a token up as written, else lowercased (raises coverage of the
        case-sensitive 300-d vectors from 85.97% to 89.09% of CoNLL train tokens).
    vector_scale: "none" (as stored), "unit" (each row L2 norm 1), "standard" (the whole table divided
        by the std of its entries: per-dimension scale ~1, relative norms kept).
    finetune: fine-tune the word vectors of the words seen in training (see TaggerConfig.finetune_words).
    train_words_min_count: with finetune, training words seen this often that have no vector get
        their own (trained, zero-started) row; 0 = never.
    max_word_len: characters per token given to the char CNN.
    tag_scheme: "iob2" (the data's tags) or "iobes" (the model learns S-/E- for single and last entity
        tokens; predictions and metrics are converted back to IOB2; Lample et al. 2016, sec. 4).
    limit: use only the first N training sentences (a quick slice); validation_limit likewise.
    """

    data: str = ""
    lowercase_fallback: bool = True
    vector_scale: str = "standard"
    finetune: bool = True
    train_words_min_count: int = 2
    max_word_len: int = 20
    tag_scheme: str = "iobes"
    limit: int | None = None
    validation_limit: int | None = None


@dataclass(frozen=True)
class TaggerConfig:
    """The tagger network (loopynet.models.tagger.SequenceTagger).

    cell: "rnn" (loopynet's Keras SimpleRNN), "gru" or "lstm" (torch's, cuDNN-style gates).
    units: per direction. bidirectional: a second RNN reads each sentence backwards; the two outputs
        are concatenated per step (2*units features).
    dropout: on the step inputs and on the RNN outputs (Lample et al. 2016: 0.5).
    word_dropout: in training, each word id is replaced by <unk> with this probability (Lample et al.
        2016 do this for singletons), so the unknown-word row, casing and characters learn to carry
        the words the test set has and training did not.
    casing_dims: 0 = off, else an embedding of the token's casing class (lower, UPPER, Title, digits, ...).
    char_dims / char_filters / char_width: a character CNN (Ma & Hovy 2016): char embedding ->
        Conv1d(char_filters, char_width) -> max over characters; char_filters 0 = off.
    crf: a linear-chain CRF (pytorch-crf) on the per-step scores instead of a per-step softmax.
    finetune_words: 0 = the word vectors stay frozen; N > 0 = N rows (the words seen in training) get a
        trained correction added to their frozen vector (`delta`, zero at the start; row map in the
        buffer `delta_rows`). Only words seen in training get gradients anyway, so this is fine-tuning
        the table with Adam state for N rows instead of the whole vocabulary.
    vocab_size, embedding_dims, num_chars, num_tags: set from the data and the vectors.
    """

    cell: str = "lstm"
    units: int = 200
    bidirectional: bool = True
    dropout: float = 0.5
    word_dropout: float = 0.0
    casing_dims: int = 8
    char_dims: int = 25
    char_filters: int = 50
    char_width: int = 3
    crf: bool = True
    finetune_words: int = 0
    vocab_size: int = 2
    embedding_dims: int = 300
    num_chars: int = 2
    num_tags: int = 9


def tagger_train_config(**overrides) -> TrainConfig:
    """TrainConfig defaults for the tagger: Adam, lr 1e-3, batch 32, clip 5, up to 30 epochs, early stopping
    with patience 5 on val_loss, weights averaged with ema_decay 0.999 (docs/tagger.md: the measured recipe)."""
    return dataclasses.replace(TrainConfig(batch_size=32, epochs=30, optimizer="adam", clip_norm=5.0, patience=5,
                                           ema_decay=0.999), **overrides)


_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def check_types(config) -> None:
    """Raise ConfigError naming the first field of a config dataclass whose value has the wrong type
    (e.g. epochs="1" or batch_size=2.5; an int is accepted for a float, a bool is not an int)."""
    for f in dataclasses.fields(config):
        value, names = getattr(config, f.name), [n.strip() for n in str(f.type).split("|")]
        if value is None and "None" in names:
            continue
        allowed = tuple(t for n in names for t in _TYPES.get(n, (object,)))
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise ConfigError(f"{type(config).__name__}.{f.name} must be {f.type}, got {value!r}")


def check_data(config: DataConfig) -> None:
    """Raise ConfigError naming the first DataConfig value outside its range (before any work)."""
    check_types(config)
    if config.maxlen < 1:
        raise ConfigError(f"maxlen must be >= 1 token, got {config.maxlen}")
    if not 0 <= config.val_split < 1:
        raise ConfigError(f"val_split must be in [0, 1) (a fraction held out for validation), got {config.val_split}")
    if config.limit is not None and config.limit < 2:
        raise ConfigError(f"limit must be >= 2 documents (or unset for all), got {config.limit}")


def check_train(config: TrainConfig) -> None:
    """Raise ConfigError naming the first TrainConfig value outside its range (before any work)."""
    check_types(config)
    def finite(value) -> bool:
        return isinstance(value, (int, float)) and math.isfinite(value)

    problems = [
        (config.batch_size >= 1, f"batch_size must be >= 1, got {config.batch_size}"),
        (config.epochs >= 0, f"epochs must be >= 0, got {config.epochs}"),
        (finite(config.lr) and config.lr > 0, f"lr must be a finite number > 0, got {config.lr}"),
        (finite(config.rho) and 0 <= config.rho < 1, f"rho (RMSprop's decay) must be in [0, 1), got {config.rho}"),
        (finite(config.epsilon) and config.epsilon > 0, f"epsilon must be > 0, got {config.epsilon}"),
        (config.clip_norm is None or (finite(config.clip_norm) and config.clip_norm > 0),
         f"clip_norm must be > 0 (or unset: no clipping), got {config.clip_norm}"),
        (config.patience is None or config.patience >= 1, f"patience must be >= 1 epoch (or unset), got {config.patience}"),
        (finite(config.lr_decay) and config.lr_decay >= 0, f"lr_decay must be >= 0, got {config.lr_decay}"),
        (finite(config.ema_decay) and 0 <= config.ema_decay < 1, f"ema_decay must be in [0, 1), got {config.ema_decay}"),
    ]
    for ok, message in problems:
        if not ok:
            raise ConfigError(message)


def check_model(config: ModelConfig) -> None:
    """Raise ConfigError naming the first invalid or unsupported combination of ModelConfig settings."""
    check_types(config)
    if config.cell not in CELLS:
        raise ConfigError(f"cell must be one of {CELLS}, got {config.cell!r}")
    if config.head not in HEADS:
        raise ConfigError(f"head must be one of {HEADS}, got {config.head!r}")
    if config.layers < 1:
        raise ConfigError(f"layers must be >= 1, got {config.layers}")
    if config.units < 1:
        raise ConfigError(f"units must be >= 1, got {config.units}")
    if config.maxlen < 1 or config.embedding_dims < 1:
        raise ConfigError(f"maxlen and embedding_dims must be >= 1, got {config.maxlen} and {config.embedding_dims}")
    if not 0.0 <= config.dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {config.dropout}")
    if config.ngram < 0:
        raise ConfigError(f"ngram must be >= 0, got {config.ngram}")
    if config.stateful:
        if not config.chunk_len or config.chunk_len < 1:
            raise ConfigError("--stateful needs --chunk-len K >= 1 (tokens per chunk)")
        if config.bidirectional:
            raise ConfigError("--stateful runs documents left to right in chunks; it cannot be --bidirectional")
        if config.head == "flatten":
            raise ConfigError("--stateful needs --head last, mean or max (flatten needs the whole padded sequence)")
    elif config.chunk_len is not None:
        raise ConfigError("--chunk-len applies only with --stateful")


def check_tagger(config: TaggerConfig) -> None:
    """Raise ConfigError naming the first TaggerConfig value outside its range."""
    check_types(config)
    if config.cell not in CELLS:
        raise ConfigError(f"cell must be one of {CELLS}, got {config.cell!r}")
    for name in ("units", "char_width", "vocab_size", "embedding_dims", "num_chars", "num_tags"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be >= 1, got {getattr(config, name)}")
    for name in ("casing_dims", "char_dims", "char_filters", "finetune_words"):
        if getattr(config, name) < 0:
            raise ConfigError(f"{name} must be >= 0 (0 = off), got {getattr(config, name)}")
    for name in ("dropout", "word_dropout"):
        if not 0 <= getattr(config, name) < 1:
            raise ConfigError(f"{name} must be in [0, 1), got {getattr(config, name)}")


def check_tagger_data(config: TaggerDataConfig) -> None:
    """Raise ConfigError naming the first TaggerDataConfig value outside its range."""
    check_types(config)
    if config.vector_scale not in VECTOR_SCALES:
        raise ConfigError(f"vector_scale must be one of {VECTOR_SCALES}, got {config.vector_scale!r}")


def to_dict(config) -> dict:
    """A JSON-ready dict of a config dataclass."""
    return dataclasses.asdict(config)


def from_dict(cls, values: dict):
    """Build `cls` from a dict, failing with the unknown keys named.

    Raises:
        ValueError: when `values` has keys that `cls` does not know.
    """
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}; valid keys: {sorted(names)}")
    return cls(**values)
