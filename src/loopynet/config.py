"""Every setting of loopynet: the configuration dataclasses (frozen), their checks, and `FLAGS`, the one
table from a config field to its command-line option and help text (used by the CLI, the tuner's space
keys and its reproduce command).

Model and training defaults are the book's numbers (NLP in Action ch. 8, sections 8.1.5-8.4); the data
pipeline's defaults are explained in DataConfig.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopynet.errors import UserError


class ConfigError(UserError, ValueError):
    """Settings that are invalid or do not work together (e.g. --stateful with --bidirectional)."""


VECTOR_NORMS = ("none", "unit", "abtt", "standard")
"""Every --vector-norm; the classifier takes CLASSIFIER_VECTOR_NORMS, the tagger TAGGER_VECTOR_NORMS."""
CLASSIFIER_VECTOR_NORMS = ("none", "unit", "abtt")
TAGGER_VECTOR_NORMS = ("none", "unit", "standard")
DEVICES = ("auto", "cpu", "cuda")
"""--device (loopynet.device): auto = cuda when torch sees a GPU, else cpu."""
WORD_WEIGHTS = ("none", "sif")
TAG_SCHEMES = ("iob2", "iobes")
INPUT_SCHEMES = ("auto", "iob1", "iob2", "iobes")  # the tags of CoNLL files (loopynet.data.conll.read_tagged)
OPTIMIZERS = ("rmsprop", "adam", "nadam")
MONITORS = ("val_loss", "val_accuracy", "val_f1")
"""Every --monitor; the classifier reports val_loss and val_accuracy, the tagger also val_f1."""
VECTORS_ERRORS = ("strict", "skip")  # --vectors-errors: stop at a bad row of a vector file, or skip it (loopynet.data.vectors)
CELLS = ("rnn", "gru", "lstm")
CASINGS = ("<pad>", "lower", "upper", "title", "mixed", "numeric", "mainly_numeric", "has_digit", "punct", "other")
"""The tagger's casing classes (rows of its --casing-dims embedding; loopynet.data.indexes.casing)."""
CHAR_ENCODERS = ("cnn", "lstm", "both")
"""--char-encoder of the tagger: a character CNN, a character BiLSTM, or both concatenated."""
DROPOUT_MODES = ("standard", "variational")
"""--dropout-mode of the tagger: a new mask at every time step, or one mask per sentence for all its steps."""
HEADS = ("flatten", "last", "mean", "max", "concat")
"""--head of the classifier; concat = last, max and mean concatenated (padding-safe; RecurrentClassifier)."""
NGRAM_TF = ("binary", "log")


@dataclass(frozen=True)
class DataConfig:
    """How text becomes token ids.

    val_split: fraction of the shuffled training split held out for validation (book: 0.2,
        i.e. 20,000 / 5,000 of IMDB's 25,000 training reviews).
    oov: "drop" (book: tokens without a vector are silently skipped) or "unk" (they map to one
        zero-initialised unknown vector).
    encoding_errors: "strict" (a non-UTF-8 file stops the run) or "replace".
    limit: use only the first N documents after the seeded shuffle (None = all).
    strip_html, split_periods, map_quotes, whole_urls: Treebank clean-ups that raise vector coverage
        (see `loopynet.data.tokenize`; the data README's advice for the shared vectors). Off = the book.
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
    vectors_errors: "strict" (a bad row of the vector file, or a header count that differs from its rows,
        stops the run) or "skip" (they are skipped and reported; `loopynet.data.vectors`).
    vectors_member: the file to read inside a zip archive of several (None: its only file).
    train_words_min_count: 0 = the vocabulary is the words with a vector; N > 0 = also every word without a
        vector that occurs at least N times in the training part gets a row of its own, zero at the start and
        trained with the others (needs the model's train_embeddings): a larger vocabulary than the vector
        file's, as Johnson & Zhang 2016 ("Supervised and Semi-Supervised Text Categorization using LSTM for
        Region Embeddings", ICML) learn every frequent word's input weights from the labels.

    `BOOK_DATA` is the chapter's pipeline verbatim (`loopynet train --preset book`).
    """

    val_split: float = 0.2
    oov: str = "drop"
    encoding_errors: str = "strict"
    limit: int | None = None
    strip_html: bool = True
    split_periods: bool = True
    map_quotes: bool = True
    whole_urls: bool = True
    vector_norm: str = "abtt"
    word_weights: str = "sif"
    sif_a: float = 1e-3
    vectors_errors: str = "strict"
    vectors_member: str | None = None
    train_words_min_count: int = 0


BOOK_DATA = {"strip_html": False, "split_periods": False, "map_quotes": False, "whole_urls": False,
             "vector_norm": "none", "word_weights": "none"}


@dataclass(frozen=True)
class ModelConfig:
    """The book's network: SimpleRNN(units, tanh, return_sequences) -> Dropout -> Flatten -> Dense(1, sigmoid).

    embedding_dims comes from the vector file (300 for the book's word2vec).
    maxlen: tokens kept per document (book 8.1.5: 400), the network's time steps (Keras'
        `input_shape=(maxlen, embedding_dims)`); the first `maxlen` in-vocabulary tokens are kept and shorter
        documents are padded at the end with zero vectors (the book's `pad_trunc`). Its only home: until
        0.1.0's issue 11 DataConfig held a copy (model folders with both still load, see `moved_maxlen`).
    """

    units: int = 50
    dropout: float = 0.2
    embedding_dims: int = 300
    maxlen: int = 400
    # Beyond the book (loopynet.models.recurrent_classifier); the defaults are the book's model.
    # cell: "rnn" (Keras SimpleRNN, one bias) | "gru" | "lstm" (torch.nn.GRU/LSTM, two biases);
    # layers: stacked cells, `dropout` between them; bidirectional: forward and backward outputs
    # concatenated, the backward direction reversed within each review's length; head: "flatten"
    # (book) | "last" | "mean" | "max" | "concat" (last, max and mean side by side) (padding-safe); stateful:
    # run documents in chunks of chunk_len tokens carrying the state (truncated BPTT); train_embeddings:
    # fine-tune the vectors;
    # ngram: 0 = off, n = add a naive-Bayes-weighted 1..n-gram logistic model (loopynet.models.ngram);
    # ngram_tf: its feature values, "binary" (1 if the n-gram occurs) or "log" (log(1 + count)).
    cell: str = "rnn"
    layers: int = 1
    bidirectional: bool = False
    head: str = "flatten"
    stateful: bool = False
    chunk_len: int | None = None
    train_embeddings: bool = False
    ngram: int = 0
    ngram_tf: str = "binary"
    rnn_maxlen: int | None = None  # with ngram: tokens the recurrent part reads (None = maxlen)
    # members: 1 = one network; K > 1 = a seed ensemble of K such networks (seeds seed..seed+K-1, trained
    # one after the other, logits averaged; loopynet.models.ensemble).
    members: int = 1
    # mask_zero (Keras' Embedding name): True = padding (id 0) is masked: last/mean/max read only real
    # tokens and the backward direction runs within each review's length; False = Keras without a
    # mask (an imported Keras model): every step of the padded sequence counts, "last" is step maxlen-1
    # and the backward direction runs over the whole padded sequence.
    mask_zero: bool = True
    # word_dropout: in training, each real token is left out of its document with this probability, the rest
    # closing up (Iyyer et al. 2015, "Deep Unordered Composition Rivals Syntactic Methods for Text
    # Classification", sec. 3.1; loopynet.models.recurrent_classifier.drop_words); 0 = off.
    word_dropout: float = 0.0


@dataclass(frozen=True)
class TrainConfig:
    """Training loop settings (book 8.2-8.3: RMSprop, binary cross-entropy, batch 32, 2 epochs).

    RMSprop constants are Keras' defaults: lr 1e-3, rho 0.9, epsilon 1e-7.
    optimizer: "rmsprop" (book) or "adam". clip_norm: clip each batch's global gradient norm
    (None = off, book). patience: stop after this many epochs without a lower val_loss (None = off,
    book); restore_best then puts back the best epoch's weights (Keras' EarlyStopping). monitor: the
    validation metric early stopping and best-weights selection watch (val_loss; e.g. val_f1 for the tagger).
    lr_decay: epoch e (1-based) trains with lr / (1 + lr_decay * (e - 1)) (Ma & Hovy 2016, sec. 3.1; 0 = constant).
    threshold: the classifier's decision threshold saved with the model (predict labels p >= threshold
    positive): a probability, or "auto" = the one that maximises balanced accuracy on the validation part.
    ema_decay: keep an exponential moving average of the weights beside them, updated after every batch
        as avg = d * avg + (1 - d) * weights with d = min(ema_decay, (1 + n) / (10 + n)) after n updates
        (Polyak averaging; torch.optim.swa_utils; the warm-up of TensorFlow's ExponentialMovingAverage);
        each validation scores both the average and the plain weights and keeps the better on `monitor`
        for best-epoch selection and the returned model (`loopynet.train.loop.fit`); 0 = off, the plain weights.
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
    threshold: float | str = 0.5


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
    vector_norm: "none" (as stored), "unit" (each row L2 norm 1), "standard" (the whole table divided
        by the std of its entries: per-dimension scale ~1, relative norms kept). Until 0.1.0's issue 11:
        vector_scale (folders with that key still load).
    train_embeddings: fine-tune the word vectors of the words seen in training (see
        TaggerConfig.finetune_words). Until issue 11: finetune.
    train_words_min_count: with train_embeddings, training words seen this often that have no vector get
        their own (trained, zero-started) row; 0 = never.
    max_word_len: characters per token given to the char CNN.
    tag_scheme: "iob2" (the data's tags) or "iobes" (the model learns S-/E- for single and last entity
        tokens; predictions and metrics are converted back to IOB2; Lample et al. 2016, sec. 4).
    limit: use only the first N training sentences (a quick slice); validation_limit likewise.
    vectors_errors, vectors_member: as in `DataConfig` (bad rows of the vector files).
    input_scheme: the tag scheme of the CoNLL files: "auto" (detected, and said), "iob1", "iob2" or
        "iobes"; they are converted to IOB2 on reading (`loopynet.data.conll.read_tagged`).
    """

    data: str = ""
    lowercase_fallback: bool = True
    vector_norm: str = "standard"
    train_embeddings: bool = True
    train_words_min_count: int = 2
    max_word_len: int = 20
    tag_scheme: str = "iobes"
    limit: int | None = None
    validation_limit: int | None = None
    vectors_errors: str = "strict"
    vectors_member: str | None = None
    input_scheme: str = "auto"


@dataclass(frozen=True)
class TaggerConfig:
    """The tagger network (loopynet.models.tagger.SequenceTagger).

    cell: "rnn" (loopynet's Keras SimpleRNN), "gru" or "lstm" (torch's, cuDNN-style gates).
    units: per direction. bidirectional: a second RNN reads each sentence backwards; the two outputs
        are concatenated per step (2*units features).
    layers: stacked recurrent layers (lstm/gru only), each reading the previous one's outputs (2*units
        features when bidirectional) with `dropout` between them; Reimers & Gurevych 2017 ("Optimal
        hyperparameters for deep LSTM-networks for sequence labeling tasks", arXiv:1707.06799) found 2
        BiLSTM layers best for NER. Folders saved before this field existed hold 1.
    dropout: on the step inputs, between stacked layers and on the RNN outputs (Lample et al. 2016: 0.5).
    dropout_mode: "standard" (a new mask at every time step) or "variational" (one mask per sentence and
        feature, the same at every time step: Gal & Ghahramani 2016, "A theoretically grounded application
        of dropout in recurrent neural networks"; Reimers & Gurevych 2017 found it the most useful single
        choice for sequence labelling). Here on the inputs and outputs of each recurrent layer, not on its
        recurrent state (the fused C kernels run the recurrence). Folders saved before this field existed
        hold "standard".
    word_dropout: in training, each word id is replaced by <unk> with this probability (Lample et al.
        2016 do this for singletons), so the unknown-word row, casing and characters learn to carry
        the words the test set has and training did not.
    casing_dims: 0 = off, else an embedding of the token's casing class (lower, UPPER, Title, digits, ...).
    char_encoder: what reads each token's characters (embedded in char_dims): "cnn" (Ma & Hovy 2016:
        Conv1d(char_filters, char_width) -> max over characters; char_filters 0 = off), "lstm" (Lample et
        al. 2016: a bidirectional LSTM of char_units per direction, its two final states; char_units 0 =
        off) or "both" (the two concatenated). Folders saved before this field existed hold "cnn".
    crf: a linear-chain CRF (pytorch-crf) on the per-step scores instead of a per-step softmax.
    train_embeddings_dims: with finetune_words, the correction covers only the first N dimensions of the
        word vectors (with several vector files, the first files' columns; the rest stay frozen); 0 = all.
        The 350-d table of GloVe 50-d ++ 300-d vectors with the correction on the GloVe part only trains and
        averages 7x fewer weights per step (docs/tagger.md).
    finetune_words: 0 = the word vectors stay frozen; N > 0 = N rows (the words seen in training) get a
        trained correction added to their frozen vector (`delta`, zero at the start; row map in the
        buffer `delta_rows`). Only words seen in training get gradients anyway, so this is fine-tuning
        the table with Adam state for N rows instead of the whole vocabulary.
    vocab_size, embedding_dims, num_chars, num_tags: set from the data and the vectors.
    """

    cell: str = "lstm"
    units: int = 200
    layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.5
    dropout_mode: str = "standard"
    word_dropout: float = 0.0
    casing_dims: int = 8
    char_encoder: str = "cnn"
    char_dims: int = 25
    char_filters: int = 50
    char_width: int = 3
    char_units: int = 25
    crf: bool = True
    train_embeddings_dims: int = 0
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


def check_data_and_train(data: DataConfig, train: TrainConfig) -> None:
    """Raise ConfigError for settings that cannot work together: early stopping (`patience`) watches a
    validation metric, so it needs a validation part (`val_split` > 0)."""
    if train.threshold == "auto" and data.val_split == 0:
        raise ConfigError("threshold auto is chosen on the validation part, but val_split is 0; set --val-split")
    if train.patience is not None and data.val_split == 0:
        raise ConfigError(f"patience {train.patience} needs validation data to watch, but val_split is 0; "
                          "set --val-split (e.g. 0.2) or drop --patience")


def check_data_and_model(data: DataConfig, model: ModelConfig) -> None:
    """Raise ConfigError when `train_words_min_count` is set without `train_embeddings`: the rows it adds start
    at zero and only fine-tuning gives them values."""
    if data.train_words_min_count and not model.train_embeddings:
        raise ConfigError(f"train_words_min_count {data.train_words_min_count} gives words without a vector rows "
                          "that start at zero and only --train-embeddings trains; add --train-embeddings or set it to 0")


def check_data(config: DataConfig) -> None:
    """Raise ConfigError naming the first DataConfig value outside its range (before any work)."""
    check_types(config)
    if not 0 <= config.val_split < 1:
        raise ConfigError(f"val_split must be in [0, 1) (a fraction held out for validation), got {config.val_split}")
    if config.vectors_errors not in VECTORS_ERRORS:
        raise ConfigError(f"vectors_errors must be one of {VECTORS_ERRORS}, got {config.vectors_errors!r}")
    if config.limit is not None and config.limit < 2:
        raise ConfigError(f"limit must be >= 2 documents (or unset for all), got {config.limit}")
    if config.vector_norm not in CLASSIFIER_VECTOR_NORMS:
        raise ConfigError(f"the classifier's vector_norm must be one of {CLASSIFIER_VECTOR_NORMS}, got "
                          f"{config.vector_norm!r}")
    if config.train_words_min_count < 0:
        raise ConfigError(f"train_words_min_count must be >= 0 (0 = off), got {config.train_words_min_count}")


MAX_LR = 10.0  # no optimizer loopynet offers trains with a larger step; 1e39 overflowed float32 in RMSprop


def check_train(config: TrainConfig) -> None:
    """Raise ConfigError naming the first TrainConfig value outside its range (before any work)."""
    check_types(config)
    def finite(value) -> bool:
        return isinstance(value, (int, float)) and math.isfinite(value)

    problems = [
        (config.batch_size >= 1, f"batch_size must be >= 1, got {config.batch_size}"),
        (config.epochs >= 0, f"epochs must be >= 0, got {config.epochs}"),
        (finite(config.lr) and 0 < config.lr <= MAX_LR, f"lr must be in (0, {MAX_LR:g}], got {config.lr}"),
        (finite(config.rho) and 0 <= config.rho < 1, f"rho (RMSprop's decay) must be in [0, 1), got {config.rho}"),
        (finite(config.epsilon) and config.epsilon > 0, f"epsilon must be > 0, got {config.epsilon}"),
        (config.clip_norm is None or (finite(config.clip_norm) and config.clip_norm > 0),
         f"clip_norm must be > 0 (0 on the command line or None: no clipping), got {config.clip_norm}"),
        (config.patience is None or config.patience >= 1, f"patience must be >= 1 epoch (or unset), got {config.patience}"),
        (finite(config.lr_decay) and config.lr_decay >= 0, f"lr_decay must be >= 0, got {config.lr_decay}"),
        (finite(config.ema_decay) and 0 <= config.ema_decay < 1, f"ema_decay must be in [0, 1), got {config.ema_decay}"),
        (config.threshold == "auto" or (finite(config.threshold) and 0 <= config.threshold <= 1),
         f"threshold must be a probability in [0, 1] or 'auto', got {config.threshold!r}"),
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
    if config.maxlen < 1:
        raise ConfigError(f"maxlen must be >= 1 token, got {config.maxlen}")
    if config.embedding_dims < 1:
        raise ConfigError(f"embedding_dims must be >= 1, got {config.embedding_dims}")
    for name in ("dropout", "word_dropout"):
        if not 0.0 <= getattr(config, name) < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), got {getattr(config, name)}")
    if config.ngram < 0:
        raise ConfigError(f"ngram must be >= 0, got {config.ngram}")
    if config.ngram_tf not in NGRAM_TF:
        raise ConfigError(f"ngram_tf must be one of {NGRAM_TF}, got {config.ngram_tf!r}")
    if config.members < 1:
        raise ConfigError(f"members must be >= 1 (1 = one network), got {config.members}")
    if config.stateful:
        if not config.chunk_len or config.chunk_len < 1:
            raise ConfigError("--stateful needs --chunk-len K >= 1 (tokens per chunk)")
        if config.bidirectional:
            raise ConfigError("--stateful runs documents left to right in chunks; it cannot be --bidirectional")
        if config.head in ("flatten", "concat"):
            raise ConfigError(f"--stateful needs --head last, mean or max (not {config.head}: it pools the whole "
                              "padded sequence or several ways at once)")
    elif config.chunk_len is not None:
        raise ConfigError("--chunk-len applies only with --stateful")


def check_tagger(config: TaggerConfig) -> None:
    """Raise ConfigError naming the first TaggerConfig value outside its range."""
    check_types(config)
    if config.cell not in CELLS:
        raise ConfigError(f"cell must be one of {CELLS}, got {config.cell!r}")
    for name in ("units", "layers", "char_width", "vocab_size", "embedding_dims", "num_chars", "num_tags"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be >= 1, got {getattr(config, name)}")
    if config.layers > 1 and config.cell == "rnn":
        raise ConfigError(f"layers {config.layers} needs cell lstm or gru (the tagger stacks only torch's cells)")
    if config.dropout_mode not in DROPOUT_MODES:
        raise ConfigError(f"dropout_mode must be one of {DROPOUT_MODES}, got {config.dropout_mode!r}")
    if config.char_encoder not in CHAR_ENCODERS:
        raise ConfigError(f"char_encoder must be one of {CHAR_ENCODERS}, got {config.char_encoder!r}")
    for name in ("casing_dims", "char_dims", "char_filters", "char_units", "finetune_words"):
        if getattr(config, name) < 0:
            raise ConfigError(f"{name} must be >= 0 (0 = off), got {getattr(config, name)}")
    if config.train_embeddings_dims < 0:
        raise ConfigError(f"train_embeddings_dims must be >= 0 (0 = all dimensions), got {config.train_embeddings_dims}")
    for name in ("dropout", "word_dropout"):
        if not 0 <= getattr(config, name) < 1:
            raise ConfigError(f"{name} must be in [0, 1), got {getattr(config, name)}")


def check_tagger_data(config: TaggerDataConfig) -> None:
    """Raise ConfigError naming the first TaggerDataConfig value outside its range."""
    check_types(config)
    if config.vector_norm not in TAGGER_VECTOR_NORMS:
        raise ConfigError(f"the tagger's vector_norm must be one of {TAGGER_VECTOR_NORMS}, got {config.vector_norm!r}")
    for name in ("limit", "validation_limit"):
        if getattr(config, name) is not None and getattr(config, name) < 1:
            raise ConfigError(f"{name} must be >= 1 sentence (or unset for all), got {getattr(config, name)}")
    if config.vectors_errors not in VECTORS_ERRORS:
        raise ConfigError(f"vectors_errors must be one of {VECTORS_ERRORS}, got {config.vectors_errors!r}")
    if config.tag_scheme not in TAG_SCHEMES:
        raise ConfigError(f"tag_scheme must be 'iob2' or 'iobes', got {config.tag_scheme!r}")
    if config.input_scheme not in INPUT_SCHEMES:
        raise ConfigError(f"input_scheme must be one of {INPUT_SCHEMES}, got {config.input_scheme!r}")


def check_monitor(config: TrainConfig, reported: tuple[str, ...]) -> None:
    """Raise ConfigError unless `config.monitor` is one of the validation metrics a task `reported`."""
    if config.monitor not in reported:
        raise ConfigError(f"monitor must be one of this task's validation metrics {reported}, got {config.monitor!r}")


def to_dict(config) -> dict:
    """A JSON-ready dict of a config dataclass."""
    return dataclasses.asdict(config)


RENAMED = {"TaggerDataConfig": {"finetune": "train_embeddings", "vector_scale": "vector_norm"}}
"""Config fields renamed since model folders were first written: class name -> {old key: new key}."""


def moved_maxlen(model: dict, data: dict) -> tuple[dict, dict]:
    """The "model" and "data" sections of a saved classifier config with maxlen in the model's only.

    Until 0.1.0's issue 11 both DataConfig and ModelConfig held maxlen (always the same value); such
    sections, or a data section holding the only maxlen, are read with it moved to the model's.

    Raises:
        ValueError: the two sections hold different maxlen values (the network could not have read both).
    """
    data = dict(data)
    if "maxlen" not in data:
        return model, data
    old = data.pop("maxlen")
    if model.get("maxlen", old) != old:
        raise ValueError(f"the data section's maxlen {old} differs from the model's {model['maxlen']}")
    return {**model, "maxlen": old}, data


def from_dict(cls, values: dict):
    """Build `cls` from a dict (keys renamed since, see RENAMED, are read under their new names), failing
    with the unknown keys named.

    Raises:
        ValueError: when `values` has keys that `cls` does not know.
    """
    renamed = RENAMED.get(cls.__name__, {})
    values = {renamed.get(k, k): v for k, v in values.items()}
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}; valid keys: {sorted(names)}")
    return cls(**values)


@dataclass(frozen=True)
class TuneSettings:
    """Everything one hyperparameter search needs (`loopynet tune`, loopynet.tune.search); picklable, so
    worker processes get a copy.

    data, vectors: as for `loopynet train`. out: results folder. space: what to search
    (a loopynet.tune.space.Space). trials: finished trials (COMPLETE + PRUNED) wanted in the study,
    earlier runs included. timeout: seconds after which a worker starts no new trial (None: no limit).
    storage: SQLAlchemy URL (None: sqlite:///OUT/study.db). heartbeat: seconds between worker heartbeats.
    limit, seed, encoding_errors: the same for every trial (same documents, same validation split).
    device: where every trial trains (DEVICES; loopynet.device).
    """

    data: str
    vectors: str
    out: Path
    space: Any
    sampler: str = "tpe"
    pruner: str = "median"
    trials: int = 20
    timeout: float | None = None
    study: str = "loopynet"
    storage: str | None = None
    workers: int = 1
    limit: int | None = None
    seed: int = 0
    encoding_errors: str = "strict"
    heartbeat: int = 30
    save_best: bool = False
    quiet: bool = False
    device: str = "auto"

    @property
    def url(self) -> str:
        return self.storage or f"sqlite:///{Path(self.out).resolve() / 'study.db'}"


SAMPLERS = ("random", "tpe")
PRUNERS = ("median", "halving", "none")


def check_tune(settings: TuneSettings) -> None:
    """Raise ConfigError naming the first TuneSettings value outside its range (the space's values are
    checked by loopynet.tune.search)."""
    if settings.sampler not in SAMPLERS or settings.pruner not in PRUNERS:
        raise ConfigError(f"sampler must be one of {SAMPLERS} and pruner one of {PRUNERS}")
    if settings.timeout is not None and not settings.timeout > 0:
        raise ConfigError(f"timeout must be > 0 seconds (or unset), not {settings.timeout}")
    for name in ("trials", "workers", "heartbeat"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"{name} must be >= 1, not {getattr(settings, name)}")


# --- command-line options ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """The command-line option of a config field: `--field-name` (underscores as hyphens), a bool field an
    on/off switch (`--name` / `--no-name`).

    help: what the option does; `--help` appends the default (and `unit`).
    unit: of the value (tokens, documents, epochs, ...). none: what the value None means (e.g. "off",
    "all"); with zero_off the command line's 0 means None. minimum: the smallest integer the command line
    takes. choices: the values allowed (the union over tasks; each task refuses what it cannot use).
    default_text: shown instead of the config's default.
    """

    help: str
    unit: str = ""
    none: str = ""
    zero_off: bool = False
    minimum: int | None = None
    choices: tuple[str, ...] | None = None
    default_text: str | None = None
    keywords: tuple[str, ...] = ()  # words taken besides numbers (threshold: "auto")

    def help_text(self, default) -> str:
        """The help line with its default, e.g. "tokens per document (default: 400 tokens)"."""
        if self.default_text is not None:
            shown = self.default_text
        elif default is None or (self.zero_off and not default):
            shown = self.none
        elif isinstance(default, bool):
            shown = "on" if default else "off"
        else:
            shown = f"{default:g}" if isinstance(default, float) else str(default)
            shown += f" {self.unit}" if self.unit else ""
        return f"{self.help} (default: {shown})"


def option(name: str) -> str:
    """The command-line option of config field `name`: --name-with-hyphens."""
    return "--" + name.replace("_", "-")


FLAGS: dict[str, Flag] = {
    # data: DataConfig, TaggerDataConfig
    "val_split": Flag("fraction of the shuffled training split held out for validation"),
    "oov": Flag("tokens without a vector: dropped (the book) or mapped to one <unk> vector", choices=("drop", "unk")),
    "encoding_errors": Flag("non-UTF-8 files: stop, or replace the bad bytes", choices=("strict", "replace")),
    "limit": Flag("use only the first N documents (after the seeded shuffle) or training sentences", none="all",
                  minimum=1),
    "validation_limit": Flag("use only the first N validation sentences", "sentences", none="all", minimum=1),
    "strip_html": Flag("remove markup tags (keeping their text) and decode HTML entities before tokenising (the "
                       "book: off)"),
    "split_periods": Flag("split a trailing period off words, movie. -> movie . but not off abbreviations (U.S., "
                          "Mr.) (the book: off)"),
    "map_quotes": Flag("map Treebank quote tokens `` and '' to \" (the book: off)"),
    "whole_urls": Flag("keep URLs and e-mail addresses as one token (the book: off)"),
    "vectors_errors": Flag("bad rows of the vector file (wrong value count, not UTF-8, ...) and a header count "
                           "that differs from the rows: stop with file and line, or skip and report them",
                           choices=VECTORS_ERRORS),
    "vectors_member": Flag("the file to read inside a zip archive of several", none="its only file"),
    "vector_norm": Flag("word vectors: none = as stored (the book); unit = L2 norm 1; abtt = all-but-the-top "
                        "(Mu & Viswanath 2018), then norm 1 (classifier only); standard = the table divided by "
                        "the std of its entries (tagger only)", choices=VECTOR_NORMS),
    "word_weights": Flag("sif: scale each word vector by a/(a + its corpus frequency) (Arora et al. 2017); "
                         "none: the book", choices=WORD_WEIGHTS),
    "sif_a": Flag("a of --word-weights sif"),
    "train_words_min_count": Flag("with --train-embeddings: words without a vector seen this often in the training "
                                  "part get a row of their own, zero at the start and trained (a larger vocabulary), "
                                  "0 = off", "occurrences"),
    "lowercase_fallback": Flag("look a token up as written, else lowercased"),
    "tag_scheme": Flag("tags the model learns (the data's are iob2); output is always IOB2", choices=TAG_SCHEMES),
    "input_scheme": Flag("tag scheme of the CoNLL files, converted on reading; auto: detected, and said (an I- tag "
                         "after O or at a sentence start means iob1)", choices=INPUT_SCHEMES),
    # model: ModelConfig, TaggerConfig
    "maxlen": Flag("tokens kept per document; shorter ones are padded at the end (book 8.1.5)", "tokens"),
    "units": Flag("recurrent units (per direction)", "units"),
    "dropout": Flag("dropout rate after the recurrent layers and between them (the tagger: also on the step "
                    "inputs)"),
    "embedding_dims": Flag("must match the vectors", "dimensions", default_text="the vector file's"),
    "cell": Flag("rnn: Keras SimpleRNN (the book); gru/lstm: torch.nn.GRU/LSTM", choices=CELLS),
    "layers": Flag("stacked recurrent layers, --dropout between them"),
    "dropout_mode": Flag("standard: a new dropout mask at every time step; variational: one mask per sentence, the "
                         "same at every step (Gal & Ghahramani 2016; the tagger only)", choices=DROPOUT_MODES),
    "bidirectional": Flag("add a backward direction (reversed within each document's length), outputs "
                          "concatenated"),
    "head": Flag("flatten (the book), or last/mean/max over the real tokens (padding-safe), or concat: last, max "
                 "and mean side by side (Howard & Ruder 2018's concat pooling)", choices=HEADS),
    "stateful": Flag("run documents in chunks of --chunk-len tokens carrying the state (truncated BPTT, 8.5.1)"),
    "chunk_len": Flag("tokens per chunk with --stateful", "tokens", none="none", minimum=1),
    "train_embeddings": Flag("fine-tune the word vectors (the classifier: SparseAdam on the rows a batch uses; "
                             "the tagger: a trained correction for the words seen in training)"),
    "mask_zero": Flag("mask padding (id 0): last/mean/max and the backward direction read only real tokens; off = "
                      "Keras without a mask: every padded step counts (imported Keras models)"),
    "ngram": Flag("add a naive-Bayes-weighted logistic model on 1..N-grams, mixed on validation, 0 = off"),
    "ngram_tf": Flag("with --ngram: an n-gram's feature value, binary (1 if it occurs) or log (log(1 + its count), "
                     "a sublinear tf; Manning et al. 2008, sec. 6.4.1, use 1 + log)", choices=NGRAM_TF),
    "members": Flag("train N networks with seeds seed..seed+N-1 one after the other and average their logits "
                    "(a seed ensemble), 1 = one network", "networks", minimum=1),
    "rnn_maxlen": Flag("with --ngram: tokens the recurrent part reads", "tokens", default_text="--maxlen", minimum=1),
    "word_dropout": Flag("in training, each word is left out of its document (the classifier; Iyyer et al. 2015) or "
                         "replaced by <unk> (the tagger) with this probability, 0 = off"),
    "train_embeddings_dims": Flag("with --train-embeddings: the trained correction covers only the first N "
                                  "dimensions of the word vectors (with several --vectors files: the first files' "
                                  "columns), 0 = all", "dimensions"),
    "casing_dims": Flag("casing-class embedding size, 0 = off", "dimensions"),
    "char_filters": Flag("character CNN filters, 0 = off", "filters"),
    "char_dims": Flag("character embedding size", "dimensions"),
    "char_encoder": Flag("what reads a token's characters: cnn = a CNN, max over characters (Ma & Hovy 2016); "
                         "lstm = a bidirectional LSTM's final states (Lample et al. 2016); both = concatenated",
                         choices=CHAR_ENCODERS),
    "char_units": Flag("character LSTM units per direction, 0 = off", "units"),
    "crf": Flag("a linear-chain CRF on the per-step scores (off: a per-step softmax)"),
    # training: TrainConfig
    "batch_size": Flag("documents (or sentences) per gradient step", "documents"),
    "epochs": Flag("passes over the training part (at most, with --patience)", "epochs"),
    "lr": Flag("learning rate of RMSprop or Adam"),
    "rho": Flag("RMSprop's decay of the squared-gradient average (Keras' default)"),
    "epsilon": Flag("RMSprop/Adam epsilon (Keras' default)"),
    "seed": Flag("seed of the shuffle, the split, the initial weights and dropout", minimum=0),
    "optimizer": Flag("rmsprop (the book), adam, or nadam (Adam with Nesterov momentum, Dozat 2016)",
                      choices=OPTIMIZERS),
    "clip_norm": Flag("clip each batch's global gradient norm to this, 0 = off", none="off", zero_off=True),
    "patience": Flag("early stopping: epochs without a better --monitor, 0 = off; the best epoch's weights are "
                     "restored", "epochs", none="off", zero_off=True),
    "restore_best": Flag("with --patience, put back the weights of the best epoch (Keras' EarlyStopping)"),
    "monitor": Flag("validation metric of early stopping and best-epoch selection (val_f1: the tagger only)",
                    choices=MONITORS),
    "lr_decay": Flag("epoch e uses lr / (1 + LR_DECAY * (e - 1)) (Ma & Hovy 2016), 0 = constant"),
    "ema_decay": Flag("keep a moving average of the weights (Polyak averaging); each validation keeps the average or "
                      "the plain weights, whichever scores better, 0 = off"),
    "threshold": Flag("decision threshold saved with the model, used by predict/evaluate: a probability, or auto = "
                      "the one that maximises balanced accuracy on the validation part", keywords=("auto",)),
    # the search: TuneSettings
    "sampler": Flag("Optuna sampler", choices=SAMPLERS),
    "pruner": Flag("stop poor trials after an epoch", choices=PRUNERS),
    "trials": Flag("finished trials wanted in the study, earlier runs included", "trials", minimum=1),
    "timeout": Flag("seconds after which workers start no new trial", "seconds", none="no limit"),
    "study": Flag("study name in the storage"),
    "storage": Flag("SQLAlchemy URL, e.g. postgresql+psycopg2://...", default_text="sqlite:///OUT/study.db"),
    "workers": Flag("worker processes sharing the study", minimum=1),
    "heartbeat": Flag("seconds between worker heartbeats; a trial silent for twice that is failed and retried",
                      "seconds", minimum=1),
    "save_best": Flag("retrain the best configuration into OUT/best-model"),
    "quiet": Flag("no progress bars, no per-epoch lines, only warnings from Optuna"),
    # where a command computes (every command that trains or runs a network; loopynet.device)
    "device": Flag("auto = cuda when torch sees a GPU, else cpu; on cuda every recurrent cell runs on cuDNN, on "
                   "the cpu on loopynet's C kernels", choices=DEVICES),
}

COMMAND_FIELDS: dict[str, tuple[tuple[type, tuple[str, ...]], ...]] = {
    "train": (
        (DataConfig, tuple(f.name for f in dataclasses.fields(DataConfig))),
        (ModelConfig, tuple(f.name for f in dataclasses.fields(ModelConfig))),
        (TrainConfig, tuple(f.name for f in dataclasses.fields(TrainConfig))),
    ),
    "tag train": (
        (TaggerDataConfig, ("lowercase_fallback", "vector_norm", "train_embeddings", "limit", "validation_limit",
                            "tag_scheme", "input_scheme", "vectors_errors", "vectors_member")),
        (TaggerConfig, ("cell", "units", "layers", "bidirectional", "dropout", "dropout_mode", "word_dropout",
                        "casing_dims", "char_encoder",
                        "char_filters", "char_units", "char_dims", "crf", "train_embeddings_dims")),
        (TrainConfig, ("batch_size", "epochs", "lr", "optimizer", "lr_decay", "ema_decay", "clip_norm", "patience",
                       "monitor", "seed")),
    ),
    "import keras": ((DataConfig, ("oov", "strip_html", "split_periods", "map_quotes", "vector_norm")),),
    "tune": ((TuneSettings, ("sampler", "pruner", "trials", "timeout", "study", "storage", "workers", "limit", "seed",
                             "encoding_errors", "heartbeat", "save_best", "quiet", "device")),),
}
"""The config fields each command takes as options (`loopynet train` takes every field of its configs)."""

DEPRECATED: dict[str, tuple[tuple[str, str, Any], ...]] = {
    "tag train": (("--finetune", "train_embeddings", True), ("--no-finetune", "train_embeddings", False),
                  ("--unidirectional", "bidirectional", False), ("--vector-scale", "vector_norm", None)),
}
"""Old spellings a command still takes (warning once): (option, config field, value it sets; None: the
option takes the value)."""


def field_type(cls: type, name: str) -> type:
    """int, float, str or bool: the type of config field `name` of `cls` (None removed from `X | None`)."""
    annotation = next(f.type for f in dataclasses.fields(cls) if f.name == name)
    kinds = [k.strip() for k in str(annotation).split("|") if k.strip() != "None"]
    return {"int": int, "float": float, "str": str, "bool": bool}[kinds[0]]


def argv_words(name: str, value) -> list[str]:
    """The command-line words that set config field `name` to `value` (a switch as --name or --no-name;
    None as 0 where 0 means off)."""
    if isinstance(value, bool):
        return [option(name) if value else "--no-" + option(name)[2:]]
    if value is None:
        if not FLAGS[name].zero_off:
            raise ValueError(f"{option(name)} cannot be set to None on the command line")
        value = 0
    return [option(name), repr(value) if isinstance(value, float) else str(value)]
