"""The tagger's embedding table: word vectors scaled, several vector files concatenated per word, and the
rows of training words that get a fine-tuned correction."""

from __future__ import annotations

from collections import Counter

import numpy as np

from loopynet.config import TaggerDataConfig
from loopynet.data.indexes import WordIndex
from loopynet.data.vectors import WordVectors


def concatenate_vectors(wvs: list, data_config: TaggerDataConfig) -> WordVectors:
    """One table from several vector files: the union of their words, each row the concatenation of
    every file's vector for that word (looked up as written, else lowercased with lowercase_fallback,
    else zeros). Each file is scaled by `vector_norm` first, so files with different norms mix evenly
    (e.g. the case-sensitive 300-d spaCy vectors with the lowercase 50-d GloVe ones)."""
    words = list(dict.fromkeys(w for wv in wvs for w in sorted(wv.index, key=wv.index.get)))
    parts = []
    for wv in wvs:
        table = scaled(np.asarray(wv.vectors, dtype=np.float32), data_config.vector_norm)
        rows = np.array([wv.index.get(w, wv.index.get(w.lower(), -1) if data_config.lowercase_fallback else -1)
                         for w in words])
        part = np.zeros((len(words), table.shape[1]), dtype=np.float32)
        part[rows >= 0] = table[rows[rows >= 0]]
        parts.append(part)
    return WordVectors({w: i for i, w in enumerate(words)}, np.concatenate(parts, axis=1),
                       {"concatenated": [wv.fingerprint for wv in wvs]})


def scaled(vectors: np.ndarray, scale: str) -> np.ndarray:
    if scale == "unit":
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    if scale == "standard":
        return vectors / max(float(vectors.std()), 1e-12)
    return vectors


def embedding_table(wv, train_sents, data_config: TaggerDataConfig) -> tuple[WordIndex, np.ndarray, np.ndarray | None]:
    """Rows: <pad>, <unk>, every vector word, then (train_embeddings only) frequent training words without a
    vector (zero vectors: their trained correction is their vector). With train_embeddings also the (V,) map
    row -> correction row (1..N for the rows that training tokens look up, <unk> included; 0 = none)."""
    vectors = scaled(np.asarray(wv.vectors, dtype=np.float32), data_config.vector_norm)
    words = ["<pad>", "<unk>"] + sorted(wv.index, key=wv.index.get)
    rows = [np.zeros((2, vectors.shape[1]), dtype=np.float32), vectors]
    if not data_config.train_embeddings:
        return WordIndex(words, data_config.lowercase_fallback), np.concatenate(rows), None
    index = WordIndex(words, data_config.lowercase_fallback)
    counts_ = Counter(t for s in train_sents for t in s.tokens)
    if data_config.train_words_min_count:
        new = sorted(w for w, n in counts_.items() if n >= data_config.train_words_min_count and index.lookup(w) == 1)
        rows.append(np.zeros((len(new), vectors.shape[1]), dtype=np.float32))
        words += new
        index = WordIndex(words, data_config.lowercase_fallback)
    seen = sorted({index.lookup(t) for t in counts_})
    delta_rows = np.zeros(len(words), dtype=np.int64)
    delta_rows[seen] = np.arange(1, len(seen) + 1)
    return index, np.concatenate(rows), delta_rows
