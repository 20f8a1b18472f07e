"""The public tagger API: train, save, load, evaluate, predict (CoNLL-2003 NER).

    tagger = Tagger.train("../shared/data/conll2003", "../shared/data/en_vectors_300d.bin.gz")
    tagger.save("runs/ner")
    Tagger.load("runs/ner").evaluate("test")["f1"]
    Tagger.load("runs/ner").predict(["Angela Merkel visited Paris ."])
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from loopynet.version import __version__
from loopynet.config import (
    MONITORS,
    TaggerConfig,
    TaggerDataConfig,
    TrainConfig,
    check_monitor,
    check_tagger,
    check_tagger_data,
    check_train,
    from_dict,
    tagger_train_config,
    to_dict,
)
from loopynet.data.conll import counts, iob2_tag, read_tagged, scheme_tags, with_scheme
from loopynet.data.indexes import CharIndex, WordIndex
from loopynet.data.tokenize import text_list
from loopynet.data.vectors import load_vectors
from loopynet.device import resolve_device
from loopynet.errors import InputError
from loopynet.io.artifact import ArtifactError, check_tensors, read_folder, read_records, save_folder
from loopynet.models.tagger import SequenceTagger
from loopynet.tasks.tagging.constraints import allowed_transitions
from loopynet.tasks.tagging.encoding import TaggedDocs, encode_sentences, entities, tokenize
from loopynet.tasks.tagging.metrics import tag_metrics
from loopynet.tasks.tagging.task import TaggingTask
from loopynet.tasks.tagging.vectors import concatenate_vectors, embedding_table
from loopynet.train.checkpoint import checked_settings
from loopynet.train.loop import fit
from loopynet.train.runtime import runtime_info, warn_runtime


@dataclass
class Tagger:
    """A trained tagger with its word index, characters, tag names, configs and history."""

    model: SequenceTagger
    words: WordIndex
    chars: CharIndex
    tag_names: list[str]
    data_config: TaggerDataConfig
    train_config: TrainConfig
    vectors_fingerprint: dict
    history: list[dict] = field(default_factory=list)
    data_report: dict = field(default_factory=dict)
    runtime: dict = field(default_factory=dict)  # threads and kernel path of training (loopynet.train.runtime)

    @classmethod
    def train(cls, data: str | os.PathLike, vectors: str | os.PathLike | list, data_config: TaggerDataConfig | None = None,
              model_config: TaggerConfig | None = None, train_config: TrainConfig | None = None,
              progress: bool = True, log: Callable[[str], None] = print,
              on_epoch_end: Callable[[dict], None] | None = None, checkpoint_dir: str | os.PathLike | None = None,
              resume: bool = False, device: str = "auto") -> Tagger:
        """Train on `data`/train.txt, validate (early stopping, val_f1) on `data`/valid.txt.

        `vectors` is one vector file or a list of them; several are concatenated per word (see
        `concatenate_vectors`). `device` ("cpu", "cuda" or "auto", see `loopynet.device`): where the
        model trains and stays.

        Raises:
            DeviceError: `device` is not available (checked before anything is read).
            ConllError, VectorsError: unreadable data or vectors. ValueError: bad settings.
            TrainingError: the loss became NaN.
        """
        target = resolve_device(device)
        data_config = replace(data_config or TaggerDataConfig(), data=str(data))
        check_tagger_data(data_config)
        model_config = model_config or TaggerConfig()
        train_config = train_config or tagger_train_config()
        check_tagger(model_config)  # every setting before any file is read
        check_train(train_config)
        check_monitor(train_config, MONITORS)
        paths = [vectors] if isinstance(vectors, (str, os.PathLike)) else list(vectors)
        settings = checked_settings({"data_file": data} | {f"vectors_file_{i}": p for i, p in enumerate(paths)},
                                    {"data": data_config, "model": model_config, "train": train_config},
                                    checkpoint_dir, resume)
        runtime = runtime_info()
        seconds = {}
        start = time.perf_counter()
        train_sents = _read(data, "train", data_config, log)[: data_config.limit]
        valid_sents = _read(data, "valid", data_config, log)[: data_config.validation_limit]
        seconds["read"] = time.perf_counter() - start
        start = time.perf_counter()
        if not paths:
            raise InputError("vectors: give a vector file, or a non-empty list of them")
        wvs = [load_vectors(p, data_config.vectors_errors, data_config.vectors_member) for p in paths]
        for note in (note for wv in wvs for note in wv.notes):
            log(note)
        wv = wvs[0] if len(wvs) == 1 else concatenate_vectors(wvs, data_config)
        seconds["vectors"] = time.perf_counter() - start
        words, table, delta_rows = embedding_table(wv, train_sents, data_config)
        chars = CharIndex.from_sentences(train_sents)
        tag_names = scheme_tags(data_config.tag_scheme)
        extra = sorted({t for s in train_sents for t in s.tags} - set(tag_names))
        tag_names += extra
        model_config = replace(model_config, vocab_size=len(words), embedding_dims=table.shape[1],
                               num_chars=len(chars.chars), num_tags=len(tag_names),
                               finetune_words=int(delta_rows.max()) if delta_rows is not None else 0)
        train_docs = encode_sentences(train_sents, words, chars, tag_names, data_config.max_word_len)
        valid_docs = encode_sentences(valid_sents, words, chars, tag_names, data_config.max_word_len)
        log(f"train {len(train_docs):,} sentences, validation {len(valid_docs):,}; vocabulary {len(words):,} rows; "
            f"OOV tokens: train {train_docs.oov / max(sum(map(len, train_docs.words)), 1):.2%}, "
            f"validation {valid_docs.oov / max(sum(map(len, valid_docs.words)), 1):.2%}")
        model = SequenceTagger(model_config, torch.from_numpy(table), seed=train_config.seed)
        model.constrain(*allowed_transitions(tag_names, data_config.tag_scheme))
        if delta_rows is not None:
            model.delta_rows.copy_(torch.from_numpy(delta_rows))
        model.to(target)
        start = time.perf_counter()
        history = fit(model, TaggingTask(tag_names), train_config, train_docs, valid_docs, progress=progress,
                      on_epoch_end=on_epoch_end, checkpoint_dir=checkpoint_dir, resume=resume, settings=settings)
        seconds["train"] = time.perf_counter() - start
        report = {"train": _report(train_sents, train_docs), "validation": _report(valid_sents, valid_docs),
                  "seconds": seconds, "vectors": {"skipped_rows": sum(wv.skipped for wv in wvs),
                                                  "notes": [note for wv in wvs for note in wv.notes]}}
        return cls(model, words, chars, tag_names, data_config, train_config, wv.fingerprint, history, report, runtime)

    def save(self, out: str | os.PathLike) -> Path:
        """Write the model folder atomically (`loopynet.io.artifact`, config kind "tagger")."""
        config = {
            "loopynet_version": __version__,
            "torch_version": torch.__version__,
            "kind": "tagger",
            "model": to_dict(self.model.config),
            "data": to_dict(self.data_config),
            "train": to_dict(self.train_config),
            "vectors": self.vectors_fingerprint,
            "tag_names": self.tag_names,
            "chars": self.chars.chars,
            "vocabulary_size": len(self.words),
            "runtime": self.runtime,
        }
        state = {name: tensor.cpu() for name, tensor in self.model.state_dict().items()}
        return save_folder(out, config, state, self.words.words, self.history, self.data_report)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "auto") -> Tagger:
        """Load a model folder written by `save`, onto `device` ("cpu", "cuda" or "auto"; see `loopynet.device`).

        Raises:
            DeviceError: `device` is not available.
            ArtifactError: missing/incomplete folder, not a tagger, or tensors that do not match config.json.
        """
        target = resolve_device(device)
        config, tensors, words = read_folder(path)
        if config.get("kind") != "tagger":
            raise ArtifactError(f"model folder {path} holds a {config.get('kind')!r}, not a tagger")
        try:
            model_config = from_dict(TaggerConfig, {"char_encoder": "cnn", **config["model"]})  # older folders: cnn
            # folders from before tag_scheme existed hold IOB2 models; the default is now "iobes"
            data_config = from_dict(TaggerDataConfig, {"tag_scheme": "iob2", **config["data"]})
            train_config = from_dict(TrainConfig, config["train"])
            tag_names, chars = config["tag_names"], config["chars"]
            model = SequenceTagger(model_config)
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as err:
            raise ArtifactError(f"model folder {path}: config.json is not a valid loopynet tagger config "
                                f"({type(err).__name__}: {err})") from None
        check_tensors(Path(path), model.state_dict(), tensors)
        model.load_state_dict(tensors)
        model.constrain(*allowed_transitions(tag_names, data_config.tag_scheme))
        model.to(target).eval()
        history, report = read_records(path)
        return cls(model, WordIndex(words, data_config.lowercase_fallback), CharIndex(chars), tag_names, data_config,
                   train_config, config.get("vectors", {}), history, report, config.get("runtime") or {})

    def _encode(self, sentences) -> TaggedDocs:
        return encode_sentences(sentences, self.words, self.chars, self.tag_names, self.data_config.max_word_len)

    def evaluate(self, split: str = "test", data: str | os.PathLike | None = None, limit: int | None = None) -> dict:
        """Entity precision/recall/F1 overall and per type (seqeval, conlleval convention), token accuracy,
        loss (per sentence), OOV rate, on `split` of `data` (default: the folder trained on).

        Raises:
            ConllError: the data cannot be found or read (pass `data`).
        """
        warn_runtime(self.runtime, "evaluating")
        data = data or self.data_config.data
        if not data:
            raise InputError("no data folder stored in the model; pass data (--data)")
        sentences = _read(data, split, self.data_config, lambda line: None)[:limit]
        docs = self._encode(sentences)
        start = time.perf_counter()
        predictions, loss = TaggingTask(self.tag_names).predict(self.model, docs)
        metrics = tag_metrics([list(t) for t in docs.tags], predictions, self.tag_names)
        metrics |= {"loss": loss, "split": split, "data": str(data), "seconds": time.perf_counter() - start,
                    "oov_rate": docs.oov / max(metrics["tokens"], 1)}
        return metrics

    def tag(self, sentences: list[list[str]]) -> list[list[str]]:
        """IOB2 tag names for pre-tokenised sentences (empty sentences give empty lists)."""
        keep = [i for i, s in enumerate(sentences) if len(s)]
        out: list[list[str]] = [[] for _ in sentences]
        if keep:
            predictions, _ = TaggingTask(self.tag_names).predict(self.model, self._encode([sentences[i] for i in keep]))
            for i, p in zip(keep, predictions):
                out[i] = [iob2_tag(self.tag_names[t]) for t in p]
        return out

    def predict(self, texts: list[str] | list[list[str]]) -> list[dict]:
        """[{"text", "tokens", "tags", "entities": [{"type", "text", "start", "end"}]}] per text.

        A text is a string (tokenised like CoNLL by `tokenize`) or a list of tokens.
        Entity start/end are token indices, end exclusive.

        Raises:
            TypeError: `texts` is one string, or holds something that is neither a string nor a token list.
        """
        texts = text_list(texts, tokens_allowed=True)
        tokenized = [tokenize(t) if isinstance(t, str) else list(t) for t in texts]
        results = []
        for text, tokens, tags in zip(texts, tokenized, self.tag(tokenized)):
            results.append({"text": text if isinstance(text, str) else " ".join(text), "tokens": tokens,
                            "tags": tags, "entities": entities(tokens, tags)})
        return results


def _read(data, split: str, data_config: TaggerDataConfig, log: Callable[[str], None]) -> list:
    """The sentences of `split`, read in `input_scheme` (the scheme assumed is logged), tagged in `tag_scheme`."""
    sentences, note = read_tagged(data, split, data_config.input_scheme)
    log(note)
    return with_scheme(sentences, data_config.tag_scheme)


def _report(sentences, docs: TaggedDocs) -> dict:
    c = counts(sentences)
    c["oov_tokens"] = docs.oov
    c["oov_rate"] = docs.oov / max(c["tokens"], 1)
    return c
