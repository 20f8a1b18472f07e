"""The public classifier API: train, save, load, evaluate, predict.

    clf = Classifier.train("aclImdb_v1_labeled.tar.gz", "en_vectors_300d.bin.gz")
    clf.save("runs/book")
    Classifier.load("runs/book").predict(["I hate that the dismal weather ..."])
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from loopynet.version import __version__
from loopynet.config import (
    BOOK_DATA,
    ConfigError,
    DataConfig,
    ModelConfig,
    NgramConfig,
    TrainConfig,
    check_data,
    check_data_and_model,
    check_data_and_train,
    check_monitor,
    check_model,
    check_train,
    from_dict,
    moved_maxlen,
    to_dict,
)
from loopynet.data.prepare import prepare_training_data, tokenizer_options
from loopynet.data.report import hidden_report, make_report
from loopynet.data.tokenize import BOOK, TOKENIZER_NAME, TOKENIZER_VERSION, text_list, tokenize
from loopynet.data.tokenized import load_tokenized
from loopynet.data.vectors import load_vectors
from loopynet.data.vocab import Vocabulary, encode, encode_texts
from loopynet.device import resolve_device
from loopynet.errors import InputError
from loopynet.home import cache_dir
from loopynet.io.artifact import ArtifactError, check_tensors, read_folder, read_records, save_folder
from loopynet.models.base import Network
from loopynet.models.factory import build_classifier
from loopynet.models.ngram import NgramEnsemble
from loopynet.tasks.classification.metrics import balanced_threshold, binary_metrics, check_threshold
from loopynet.tasks.classification.members import fit_classifier
from loopynet.tasks.classification.ngram import fit_mix, fit_ngram
from loopynet.tasks.classification.task import predict_proba
from loopynet.tasks.classification.warm_start import init_from as warm_start
from loopynet.train.checkpoint import checked_settings
from loopynet.train.runtime import runtime_info, warn_runtime


@dataclass
class Classifier:
    """A trained model with everything needed to use it: vocabulary, class names, configs, history."""

    model: Network  # BookClassifier for the book's settings, else see loopynet.models.factory
    vocab: Vocabulary
    class_names: list[str]
    data_config: DataConfig
    train_config: TrainConfig
    vectors_fingerprint: dict
    history: list[dict] = field(default_factory=list)
    data_report: dict = field(default_factory=dict)
    runtime: dict = field(default_factory=dict)  # threads and kernel path of training (loopynet.train.runtime)
    threshold: dict = field(default_factory=lambda: {"value": 0.5, "rule": "fixed"})  # the saved decision rule
    origin: dict = field(default_factory=dict)  # where an imported model came from (loopynet.interop)

    @property
    def maxlen(self) -> int:
        return self.model.config.maxlen

    @classmethod
    def train(cls, data: str | os.PathLike, vectors: str | os.PathLike, data_config: DataConfig | None = None,
              model_config: ModelConfig | None = None, train_config: TrainConfig | None = None,
              split: str = "train", progress: bool = True, log: Callable[[str], None] = print,
              on_epoch_end: Callable[[dict], None] | None = None, checkpoint_dir: str | os.PathLike | None = None,
              resume: bool = False, init_from: str | os.PathLike | None = None,
              ngram_config: NgramConfig | None = None, device: str = "auto") -> "Classifier":
        """Read `split` of `data`, shuffle (seeded), hold out `val_split`, and train the book's model.

        `on_epoch_end(record)` is called with each epoch's history record (loss, accuracy, val_loss,
        val_accuracy, ...); an exception it raises stops training (e.g. optuna.TrialPruned).
        With `checkpoint_dir` the training state is saved there after each epoch, and `resume=True`
        continues a killed run from it (same seed and settings: same result as an uninterrupted run).

        `model_config.embedding_dims` is set from the vectors (`model_config.maxlen`: tokens kept per document). With
        `model_config.ngram`, the n-gram part is fitted first (settings: `ngram_config`) and the mix of the
        two logits last (loopynet.tasks.classification.ngram). `device` ("cpu", "cuda" or "auto", see
        `loopynet.device`): where the model trains and stays.

        Raises:
            DeviceError: `device` is not available (checked before anything is read).
            CorpusError, VectorsError: unreadable data or vectors.
            ValueError: --embedding-dims differs from the vector file's, or bad settings (ConfigError,
                checked before anything is read).
            TrainingError: the loss became NaN.
        """
        for given, cls_ in ((data_config, DataConfig), (model_config, ModelConfig), (train_config, TrainConfig)):
            if given is not None and not isinstance(given, cls_):
                raise TypeError(f"expected a {cls_.__name__} (or None) where a {type(given).__name__} was given; "
                                "the order is data_config, model_config, train_config")
        data_config = data_config or DataConfig()
        train_config = train_config or TrainConfig()
        check_data(data_config)
        check_train(train_config)
        check_monitor(train_config, ("val_loss", "val_accuracy"))
        check_data_and_train(data_config, train_config)
        model_config = model_config or ModelConfig()
        check_model(model_config)  # before any file is read
        check_data_and_model(data_config, model_config)
        settings = checked_settings({"data_file": data, "vectors_file": vectors, "init_from": init_from},
                                    {"data": data_config, "model": model_config, "train": train_config,
                                     "ngram": ngram_config}, checkpoint_dir, resume, split=split)
        runtime = runtime_info()
        target = resolve_device(device)
        start = time.perf_counter()
        word_vectors = load_vectors(vectors, data_config.vectors_errors, data_config.vectors_member)
        for note in word_vectors.notes:
            log(note)
        model_config = _fit_to_vectors(model_config, word_vectors.embedding_dims, vectors)
        vectors_seconds = time.perf_counter() - start
        prepared = prepare_training_data(data, word_vectors, data_config, model_config.maxlen, train_config.seed, split,
                                         log)
        model = build_classifier(model_config, torch.from_numpy(prepared.embeddings), seed=train_config.seed)
        if init_from is not None:  # start from a saved model's weights
            saved = cls.load(init_from)
            warm_start(model, saved.model, saved.vocab.words, prepared.vocab.words, log)
        model.to(target)
        start = time.perf_counter()
        if isinstance(model, NgramEnsemble):
            fit_ngram(model, prepared.train, prepared.validation, ngram_config or NgramConfig(), train_config.seed, log)
        history = fit_classifier(model, model_config.maxlen, train_config, prepared.train, prepared.validation,
                                 progress=progress, on_epoch_end=on_epoch_end, checkpoint_dir=checkpoint_dir,
                                 resume=resume, settings=settings, log=log)
        if isinstance(model, NgramEnsemble):
            fit_mix(model, prepared.validation, log)
        threshold = _decision_rule(train_config.threshold, model, prepared.validation, model_config.maxlen, log)
        seconds = prepared.seconds | {"vectors": vectors_seconds, "train": time.perf_counter() - start}
        report = {part: r.to_dict() for part, r in prepared.reports.items()} | {"seconds": seconds}
        report["vectors"] = {"skipped_rows": word_vectors.skipped, "notes": word_vectors.notes}
        report["read"] = prepared.read
        return cls(model, prepared.vocab, prepared.class_names, data_config, train_config, word_vectors.fingerprint,
                   history, report, runtime, threshold)

    def save(self, out: str | os.PathLike) -> Path:
        """Write the model folder atomically (see `loopynet.io.artifact`)."""
        config = {
            "loopynet_version": __version__,
            "torch_version": torch.__version__,
            "kind": "classifier",
            "model": to_dict(self.model.config),
            "data": to_dict(self.data_config),
            "train": to_dict(self.train_config),
            "vectors": self.vectors_fingerprint,
            "tokenizer": {"name": TOKENIZER_NAME, "version": TOKENIZER_VERSION},
            "class_names": self.class_names,
            "vocabulary_size": len(self.vocab),
            "runtime": self.runtime,
            "threshold": self.threshold,
        } | ({"origin": self.origin} if self.origin else {})
        state = {name: tensor.cpu() for name, tensor in self.model.state_dict().items()}
        return save_folder(out, config, state, self.vocab.words, self.history, self.data_report)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "auto") -> "Classifier":
        """Load a model folder written by `save`, onto `device` ("cpu", "cuda" or "auto"; see `loopynet.device`).

        Raises:
            DeviceError: `device` is not available.
            ArtifactError: missing/incomplete folder, other format version, or tensors whose shapes
                differ from what config.json implies (the message lists each difference).
        """
        target = resolve_device(device)
        config, tensors, words = read_folder(path)
        if config.get("kind", "classifier") != "classifier":
            raise ArtifactError(f"model folder {path} holds a {config['kind']!r} model, not a classifier")
        class_names = config.get("class_names")
        if not (isinstance(class_names, list) and len(class_names) == 2 and all(isinstance(c, str) for c in class_names)):
            raise ArtifactError(f"model folder {path}: config.json needs class_names, a list of 2 names; got {class_names!r}")
        try:
            model_section, data_section = moved_maxlen(config["model"], config["data"])
            model_config = from_dict(ModelConfig, model_section)
            # folders written before the clean-ups/vector_norm defaults changed lack some of these keys:
            # they were trained with the book's pipeline, which is what a missing key meant then
            data_config = from_dict(DataConfig, {**BOOK_DATA, **data_section})
            train_config = from_dict(TrainConfig, config["train"])
            model = build_classifier(model_config, torch.zeros(len(words), model_config.embedding_dims))
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as err:
            raise ArtifactError(f"model folder {path}: config.json is not a valid loopynet classifier config "
                                f"({type(err).__name__}: {err})") from None
        if "embeddings" in tensors and tensors["embeddings"].shape[0] != len(words):
            raise ArtifactError(f"model folder {path}: vocab.json has {len(words)} words but the embeddings have "
                                f"{tensors['embeddings'].shape[0]} rows")
        model.resize_for(tensors)  # buffers whose size is data-dependent (n-gram table)
        check_tensors(Path(path), model.state_dict(), tensors)
        model.load_state_dict(tensors)
        model.to(target)
        history, report = read_records(path)
        _warn_if_old_tokenizer(path, config.get("tokenizer", {}).get("version", 1), data_config)
        return cls(model, Vocabulary(words, data_config.oov), class_names, data_config, train_config,
                   config.get("vectors", {}), history, report, config.get("runtime") or {},
                   _saved_rule(path, config.get("threshold", {"value": 0.5, "rule": "fixed"})), config.get("origin", {}))

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """(N,) P(class_names[1]) for each text (empty texts included: they are all padding).

        Raises:
            TypeError: `texts` is one string, or holds something that is not a string.
        """
        return self._probabilities(text_list(texts))

    def _probabilities(self, texts: list[str]) -> np.ndarray:
        return self._predicted(texts)[0]

    def _predicted(self, texts: list[str]) -> tuple[np.ndarray, list[int], list[int]]:
        """(N,) probabilities, and per text its token count and how many of them have a vector."""
        options = tokenizer_options(self.data_config)
        token_lists = [tokenize(t, options) for t in texts]
        first_word = 2 if self.vocab.oov == "unk" else 1  # ids below are <pad> (and <unk>)
        known = [sum(self.vocab.index.get(tok, 0) >= first_word for tok in tokens) for tokens in token_lists]
        docs = encode_texts(token_lists, self.vocab)
        probabilities = predict_proba(self.model, docs, self.maxlen)
        if not np.isfinite(probabilities).all():
            first = int(np.flatnonzero(~np.isfinite(probabilities))[0])
            raise ValueError(f"the model gave text {first + 1} not a finite probability ({probabilities[first]}); "
                             "its weights or vectors are damaged: reload or retrain the model")
        return probabilities, [len(t) for t in token_lists], known

    def _docs(self, texts: list[str]):
        options = tokenizer_options(self.data_config)
        return encode_texts([tokenize(t, options) for t in texts], self.vocab)

    def predict(self, texts: list[str], threshold: float | None = None) -> list[dict]:
        """[{"text", "probability", "label", "tokens", "known_tokens"}] per text; label is class_names[1] when
        probability >= threshold (default: the model's saved threshold, `self.threshold["value"]`: 0.5 unless
        trained with `TrainConfig.threshold`); tokens: the text's token count, known_tokens: how many have a
        vector in the model's vocabulary (0: the probability is the model's answer to an empty text).

        With one sigmoid output the decision is a threshold, never an argmax over one column.
        """
        threshold = self.threshold["value"] if threshold is None else threshold
        check_threshold(threshold)
        texts = text_list(texts)
        probabilities, tokens, known = self._predicted(texts)
        return [{"text": t, "probability": float(p), "label": self.class_names[int(p >= threshold)], "tokens": n,
                 "known_tokens": k} for t, p, n, k in zip(texts, probabilities, tokens, known)]

    def evaluate(self, data: str | os.PathLike, split: str = "test", threshold: float | None = None,
                 encoding_errors: str | None = None, limit: int | None = None) -> dict:
        """Metrics on a labelled split: accuracy, precision, recall, f1, loss, confusion_matrix, support,
        plus the split's data report (OOV counted against this model's vocabulary).

        Raises:
            CorpusError: unreadable data. ValueError: the data's class names differ from the model's.
        """
        threshold = self.threshold["value"] if threshold is None else threshold
        check_threshold(threshold)
        warn_runtime(self.runtime, "evaluating")
        if limit is not None and limit < 1:
            raise InputError(f"limit must be >= 1 document (or None for all), got {limit}")
        start = time.perf_counter()
        corpus, docs, oov = self.read_split(data, split, encoding_errors, limit)
        read_seconds = time.perf_counter() - start
        start = time.perf_counter()
        metrics = binary_metrics(predict_proba(self.model, docs, self.maxlen), docs.labels, threshold)
        metrics["split"], metrics["threshold"] = split, threshold
        metrics["seconds"] = {"read_and_tokenize": read_seconds, "predict": time.perf_counter() - start}
        metrics["data_report"] = make_report(split, docs, oov, self.maxlen, self.class_names, corpus).to_dict()
        metrics["data_report"]["read"] = hidden_report(data, corpus.hidden, lambda line: None)
        return metrics

    def read_split(self, data: str | os.PathLike, split: str = "test", encoding_errors: str | None = None,
                   limit: int | None = None):
        """(TokenizedCorpus, EncodedDocs, OOVCount) of a labelled split, tokenised as this model was trained and
        encoded with its vocabulary; with `limit`, a seeded random slice of that many documents (the split is
        sorted by class).

        Raises:
            CorpusError: unreadable data. ValueError: limit < 1, or the data's class names differ from the model's.
        """
        if limit is not None and limit < 1:
            raise InputError(f"limit must be >= 1 document (or None for all), got {limit}")
        corpus = load_tokenized(data, split, encoding_errors or self.data_config.encoding_errors, cache_dir(),
                                tokenizer_options(self.data_config))
        if corpus.class_names != self.class_names:
            raise InputError(f"{data} split {split!r} has classes {corpus.class_names}; the model was trained on {self.class_names}")
        if limit is not None:
            corpus = corpus.subset(np.random.default_rng(0).permutation(len(corpus))[:limit])
        docs, oov = encode(corpus, self.vocab)
        return corpus, docs, oov

    def explain(self, texts: list[str], steps: int = 50, threshold: float | None = None) -> list[dict]:
        """Per text, the evidence for its prediction as plain data (NumPy arrays, dicts): tokens and what the
        model did not read, Integrated Gradients attributions (`steps` points, zero-vector baseline), occlusion
        by deletion, P(every prefix), hidden states, the thought vector. See `loopynet.explain.explanation`.
        The label uses `threshold` (default: the model's saved threshold, as `predict`).

        Raises:
            TypeError: `texts` is one string or holds a non-string.
            ValueError: steps < 1, a bad threshold, or IG's completeness error above 1% (CompletenessError).
        """
        from loopynet.explain.explanation import explain_texts

        threshold = self.threshold["value"] if threshold is None else threshold
        check_threshold(threshold)
        return explain_texts(self, texts, steps, threshold)

    def encode(self, texts: list[str], batch_size: int = 128) -> dict:
        """Thought vectors of texts: {"vectors": (N, D) float32, "probability": (N,) float64, "length": (N,)
        tokens read}. D = units * directions: the last real state (bidirectional: forward h_T with backward
        h_1) or a max/mean head's pooled vector (see `loopynet.explain.encode`).

        Raises:
            TypeError: `texts` is one string or holds a non-string.
        """
        from loopynet.explain.encode import document_vectors
        from loopynet.explain.network import Network, document_rows

        docs = self._docs(text_list(texts))
        rows = document_rows(docs, self.maxlen)
        vectors, logits = document_vectors(Network(self.model), rows, batch_size)
        return {"vectors": vectors, "probability": 1.0 / (1.0 + np.exp(-logits.astype(np.float64))),
                "length": np.array([len(r) for r in rows], dtype=np.int64)}


def _decision_rule(setting: float | str, model: Network, validation, maxlen: int, log: Callable[[str], None]) -> dict:
    """{"value", "rule"} of `TrainConfig.threshold`; for "auto" also the validation part's balanced accuracy
    at the chosen threshold and at 0.5."""
    if setting != "auto":
        return {"value": float(setting), "rule": "fixed"}
    probabilities = predict_proba(model, validation, maxlen)
    value, balanced = balanced_threshold(probabilities, validation.labels)
    at_half = binary_metrics(probabilities, validation.labels, 0.5)["balanced_accuracy"]
    log(f"threshold auto: {value:.4f} (validation balanced accuracy {balanced:.4f}; at 0.5: {at_half:.4f})")
    return {"value": value, "rule": "auto: maximum balanced accuracy on the validation part",
            "validation_balanced_accuracy": balanced, "validation_balanced_accuracy_at_0.5": at_half}


def _saved_rule(path, rule) -> dict:
    if not (isinstance(rule, dict) and isinstance(rule.get("value"), (int, float)) and 0 <= rule["value"] <= 1):
        raise ArtifactError(f"model folder {path}: config.json's threshold must hold a value in [0, 1]; got {rule!r}")
    return rule


def _warn_if_old_tokenizer(path, version: int, data_config: DataConfig) -> None:
    """Warn when a model folder was trained with another tokenizer version and clean-ups on: its
    predictions now see slightly different tokens (the book's plain Treebank tokens never changed)."""
    if version != TOKENIZER_VERSION and tokenizer_options(data_config) != BOOK:
        warnings.warn(f"model folder {path} was trained with tokenizer version {version}; this loopynet tokenises "
                      f"with version {TOKENIZER_VERSION} (see loopynet.data.tokenize): retrain for identical tokens",
                      stacklevel=3)


def _fit_to_vectors(config: ModelConfig, dims: int, vectors) -> ModelConfig:
    """`config` with embedding_dims taken from the vectors; an explicit, different value is an error."""
    if config.embedding_dims not in (dims, ModelConfig.embedding_dims):
        raise ConfigError(f"--embedding-dims {config.embedding_dims} but {vectors} has {dims}-dimensional vectors")
    return replace(config, embedding_dims=dims)
