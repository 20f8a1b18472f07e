"""Tagging for the generic training loop: encoding CoNLL sentences, padded batches, the `TaggingTask`
(`loopynet.train.loop.Task`) and entity-level metrics (seqeval, conlleval convention).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch

from loopynet.data.conll import Sentence, iob2_tag
from loopynet.models.tagger import SequenceTagger, casing

PAD, UNK = 0, 1


@dataclass
class WordIndex:
    """Token -> row of the embedding table: the exact string, else (lowercase_fallback) its lowercase,
    else <unk> (row 1). Row 0 is padding."""

    words: list[str]
    lowercase_fallback: bool = True
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def lookup(self, token: str) -> int:
        i = self.index.get(token)
        if i is None and self.lowercase_fallback:
            i = self.index.get(token.lower())
        return UNK if i is None else i


@dataclass
class CharIndex:
    """Character -> id; 0 padding, 1 unknown character."""

    chars: list[str]
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        self.index = {c: i for i, c in enumerate(self.chars)}

    def ids(self, token: str, max_len: int) -> list[int]:
        return [self.index.get(c, UNK) for c in token[:max_len]]

    @classmethod
    def from_sentences(cls, sentences: list[Sentence], min_count: int = 1) -> CharIndex:
        counts = Counter(c for s in sentences for t in s.tokens for c in t)
        return cls(["<pad>", "<unk>"] + sorted(c for c, n in counts.items() if n >= min_count))


@dataclass
class TaggedDocs:
    """Encoded sentences: per sentence word ids, casing ids, char ids (n, L), tag ids; plus the tokens."""

    words: list[np.ndarray]
    cases: list[np.ndarray]
    chars: list[np.ndarray]
    tags: list[np.ndarray]
    tokens: list[list[str]]
    oov: int = 0

    def __len__(self) -> int:
        return len(self.words)


def encode_sentences(sentences: list[list[str]] | list[Sentence], words: WordIndex, chars: CharIndex,
                     tag_names: list[str], max_word_len: int = 20) -> TaggedDocs:
    """Encode sentences (Sentence objects, or token lists: then all tags are "O").

    Raises:
        ValueError: a tag that is not in `tag_names`.
    """
    tag_id = {t: i for i, t in enumerate(tag_names)}
    out = TaggedDocs([], [], [], [], [])
    for s in sentences:
        tokens = s.tokens if isinstance(s, Sentence) else list(s)
        tags = s.tags if isinstance(s, Sentence) else ["O"] * len(tokens)
        ids = np.array([words.lookup(t) for t in tokens], dtype=np.int64)
        out.oov += int((ids == UNK).sum())
        out.words.append(ids)
        out.cases.append(np.array([casing(t) for t in tokens], dtype=np.int64))
        L = max([min(len(t), max_word_len) for t in tokens] + [1])
        c = np.zeros((len(tokens), L), dtype=np.int64)
        for i, t in enumerate(tokens):
            row = chars.ids(t, max_word_len)
            c[i, : len(row)] = row
        out.chars.append(c)
        try:
            out.tags.append(np.array([tag_id[t] for t in tags], dtype=np.int64))
        except KeyError as err:
            raise ValueError(f"tag {err.args[0]!r} is not one of the model's tags {tag_names}") from None
        out.tokens.append(tokens)
    return out


def pad_batch(docs: TaggedDocs, idx) -> tuple[np.ndarray, ...]:
    """(words (B,T), cases (B,T), chars (B,T,L), lengths (B,), tags (B,T)), zero-padded at the end."""
    B = len(idx)
    lengths = np.array([len(docs.words[i]) for i in idx], dtype=np.int64)
    T = max(int(lengths.max()), 1) if B else 1
    L = max([docs.chars[i].shape[1] for i in idx] + [1])
    words, cases, tags = (np.zeros((B, T), dtype=np.int64) for _ in range(3))
    chars = np.zeros((B, T, L), dtype=np.int64)
    for b, i in enumerate(idx):
        n = lengths[b]
        words[b, :n], cases[b, :n], tags[b, :n] = docs.words[i], docs.cases[i], docs.tags[i]
        chars[b, :n, : docs.chars[i].shape[1]] = docs.chars[i]
    return words, cases, chars, lengths, tags


def _tensors(batch):
    return tuple(torch.from_numpy(a) for a in batch)


class TaggingTask:
    """`loopynet.train.loop.Task` for a `SequenceTagger`: the loss is summed over the real tokens of a
    batch and divided by its sentences; padding is masked out of loss and metrics.

    Batches are padded to their longest sentence. With `bucket` > 1, each run of `bucket * batch_size`
    sentences of the loop's (seeded) order is sorted by length before it is cut into batches, and the
    batches are visited in an order derived from the same permutation: less padding, same determinism.
    """

    def __init__(self, tag_names: list[str], eval_batch_size: int = 256, bucket: int = 20):
        self.tag_names = list(tag_names)
        self.eval_batch_size = eval_batch_size
        self.bucket = bucket

    def batches(self, docs: TaggedDocs, batch_size: int, order: np.ndarray):
        order = np.asarray(order)
        groups = []
        span = batch_size * max(self.bucket, 1)
        for start in range(0, len(order), span):
            chunk = order[start: start + span]
            if self.bucket > 1:
                chunk = chunk[np.argsort([len(docs.words[i]) for i in chunk], kind="stable")]
            groups += [chunk[i: i + batch_size] for i in range(0, len(chunk), batch_size)]
        if self.bucket > 1 and len(groups) > 1:  # visit batches in an order fixed by the permutation
            visit = np.random.default_rng(int(order[0])).permutation(len(groups))
            groups = [groups[i] for i in visit]
        for idx in groups:
            yield pad_batch(docs, idx)

    def loss(self, model: SequenceTagger, batch):
        words, cases, chars, lengths, tags = _tensors(batch)
        emissions = model(words, cases, chars, lengths)
        loss = model.loss_from_emissions(emissions, tags, lengths)
        mask = SequenceTagger.mask(lengths, tags.shape[1])
        # training accuracy from the per-step argmax (with a CRF: of the emissions, cheap; Viterbi in validate)
        correct = int(((emissions.detach().argmax(-1) == tags) & mask).sum())
        return loss, correct, int(lengths.sum())

    @torch.no_grad()
    def predict(self, model: SequenceTagger, docs: TaggedDocs) -> tuple[list[list[int]], float]:
        """(tag ids per sentence in document order, mean loss per sentence), model in eval mode."""
        model.eval()
        order = np.arange(len(docs))
        order = order[np.argsort([len(w) for w in docs.words], kind="stable")]
        predictions: list[list[int] | None] = [None] * len(docs)
        total = 0.0
        for start in range(0, len(order), self.eval_batch_size):
            idx = order[start: start + self.eval_batch_size]
            words, cases, chars, lengths, tags = _tensors(pad_batch(docs, idx))
            emissions = model(words, cases, chars, lengths)
            total += float(model.loss_from_emissions(emissions, tags, lengths)) * len(idx)
            for i, p in zip(idx, model.decode_emissions(emissions, lengths)):
                predictions[i] = p
        return predictions, total / max(len(docs), 1)

    def validate(self, model: SequenceTagger, docs: TaggedDocs) -> dict:
        predictions, loss = self.predict(model, docs)
        metrics = tag_metrics([list(t) for t in docs.tags], predictions, self.tag_names)
        return {"val_loss": loss, "val_accuracy": metrics["token_accuracy"], "val_f1": metrics["f1"]}


def tag_metrics(true_ids: list[list[int]], pred_ids: list[list[int]], tag_names: list[str]) -> dict:
    """Entity-level precision/recall/F1 overall (micro) and per type by seqeval in the conlleval
    convention (default mode: an I- after O or another type starts an entity), plus token accuracy.
    IOBES tag names are compared as IOB2 (S- as B-, E- as I-).
    """
    from seqeval.metrics import classification_report

    names = [iob2_tag(t) for t in tag_names]
    y_true = [[names[i] for i in s] for s in true_ids]
    y_pred = [[names[i] for i in s] for s in pred_ids]
    tokens = sum(len(s) for s in y_true)
    correct = sum(a == b for t, p in zip(y_true, y_pred) for a, b in zip(t, p))
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
    per_type = {k: {"precision": float(v["precision"]), "recall": float(v["recall"]), "f1": float(v["f1-score"]),
                    "support": int(v["support"])}
                for k, v in report.items() if not k.endswith(" avg")}
    return {"precision": float(micro["precision"]), "recall": float(micro["recall"]), "f1": float(micro["f1-score"]),
            "entities": int(micro["support"]), "per_type": per_type, "token_accuracy": correct / max(tokens, 1),
            "tokens": tokens, "sentences": len(y_true)}


def majority_accuracy(docs: TaggedDocs) -> float:
    """Token accuracy of always predicting the most frequent tag of `docs`."""
    counts = Counter(int(t) for s in docs.tags for t in s)
    return max(counts.values()) / max(sum(counts.values()), 1) if counts else 0.0
