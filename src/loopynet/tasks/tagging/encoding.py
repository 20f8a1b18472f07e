"""Sentences as arrays for the tagger, without torch (the ONNX runtime uses it too): CoNLL-like tokens of a
text, word/casing/character ids per sentence, zero-padded batches, and entity spans of IOB2 tags.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loopynet.data.conll import Sentence
from loopynet.data.indexes import UNK, CharIndex, WordIndex, casing
from loopynet.data.tokenize import DEFAULT
from loopynet.data.tokenize import tokenize as pipeline_tokenize
from loopynet.errors import InputError


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
            raise InputError(f"tag {err.args[0]!r} is not one of the model's tags {tag_names}") from None
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


def tokenize(text: str) -> list[str]:
    """CoNLL-like tokens: the classifier's default pipeline (`loopynet.data.tokenize.DEFAULT`: Treebank,
    markup stripped, a trailing period split off words but not off abbreviations, URLs whole, `"` quotes),
    so `Paris.` in the middle of a text becomes `Paris` `.` as in the pre-tokenised training data."""
    return pipeline_tokenize(text, DEFAULT)


def entities(tokens: list[str], tags: list[str]) -> list[dict]:
    """Entity spans of IOB2 tags, conlleval convention (seqeval's get_entities)."""
    from seqeval.metrics.sequence_labeling import get_entities

    return [{"type": kind, "text": " ".join(tokens[s: e + 1]), "start": s, "end": e + 1}
            for kind, s, e in get_entities(list(tags))]
