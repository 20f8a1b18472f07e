"""Vocabulary (the words a corpus uses that have a vector), the frozen embedding matrix, and
encoding of tokens to ids with the book's OOV policy.

Id 0 is padding (a zero vector, as the book pads with zero vectors). With `oov="unk"`, id 1 is
`<unk>` (a zero vector), used for every token without a vector; with the book's `oov="drop"`
such tokens are skipped, and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from loopynet.config import CLASSIFIER_VECTOR_NORMS, WORD_WEIGHTS, ConfigError
from loopynet.data.tokenized import TokenizedCorpus, gather, release_pages
from loopynet.data.vectors import WordVectors

PAD = "<pad>"
UNK = "<unk>"
OOV_POLICIES = ("drop", "unk")
RELEASE_EVERY = 256  # documents read between releases of memory-mapped token pages: each read maps up to 64 KB of
# the file around it (the kernel's fault-around), so at most ~16 MB of the map stays resident (was 4,096: 256 MB)


@dataclass
class Vocabulary:
    """words[i] is the token string of id i; words[0] is padding (and words[1] `<unk>` when oov='unk')."""

    words: list[str]
    oov: str = "drop"

    def __post_init__(self):
        if self.oov not in OOV_POLICIES:
            raise ConfigError(f"oov must be one of {OOV_POLICIES}, got {self.oov!r}")
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    @property
    def unk_id(self) -> int:
        """Id of unknown tokens: 1 with oov='unk', -1 (dropped) with the book's oov='drop'."""
        return 1 if self.oov == "unk" else -1


@dataclass
class EncodedDocs:
    """Ragged token ids of N documents, labels (N,) int64.

    Stored document j is `ids[offsets[j]:offsets[j+1]]` (int32); document i is stored document
    `index[i]` (index None: i). With `lookup` (a (types,) int32 table) the stored values are token-type
    ids (e.g. a memory-mapped token cache, see data/tokenized.py) mapped to ids when a document is read,
    type ids whose entry is -1 (OOV, dropped) being left out: no encoded copy of the corpus is made.
    `lengths` (N,) is each document's number of ids.
    """

    ids: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    index: np.ndarray | None = None
    lookup: np.ndarray | None = None
    lengths: np.ndarray = field(init=False, repr=False)
    _read: int = field(default=0, init=False, repr=False)

    def __post_init__(self):
        if self.index is None:
            self.index = np.arange(len(self.offsets) - 1, dtype=np.int64)
        stored = self.offsets[self.index + 1] - self.offsets[self.index]
        if self.lookup is not None and (self.lookup < 0).any():
            order = np.argsort(self.index, kind="stable")  # stored order: the pages are read front to back
            kept = np.concatenate([_per_document((self.lookup[tokens] >= 0), lengths)
                                   for lengths, tokens in gather(self.ids, self.offsets, self.index[order])] or [stored])
            stored = np.empty_like(kept)
            stored[order] = kept
        self.lengths = stored.astype(np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def first_ids(self, i: int, maxlen: int) -> np.ndarray:
        """The first `maxlen` ids of document i (int32; fewer when it is shorter).

        Every `RELEASE_EVERY` documents read, the pages of memory-mapped ids read so far are released
        (`release_pages`): an epoch over a large corpus does not accumulate it in memory.
        """
        self._read += 1
        if self._read % RELEASE_EVERY == 0:
            release_pages(self.ids)
        j = self.index[i]
        stored = self.ids[self.offsets[j] : self.offsets[j + 1]]
        if self.lookup is None:
            return stored[:maxlen]
        ids = self.lookup[stored]
        return ids[ids >= 0][:maxlen]


def _per_document(flags: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(n,) number of true `flags` in each of n consecutive runs of `lengths` (empty runs count 0)."""
    before = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
    ends = np.cumsum(lengths)
    return before[ends] - before[ends - lengths]


@dataclass
class OOVCount:
    tokens: int
    oov_tokens: int


def words_to_train(corpus: TokenizedCorpus, vectors: WordVectors, min_count: int) -> list[str]:
    """The token types of `corpus` (a training part) without a vector that occur at least `min_count` times,
    most frequent first (ties in type order); [] for min_count 0."""
    if not min_count:
        return []
    counts = corpus.type_counts()
    order = np.argsort(-counts, kind="stable")
    return [corpus.types[t] for t in order if counts[t] >= min_count and corpus.types[t] not in vectors.index]


def build_vocabulary(corpus: TokenizedCorpus, vectors: WordVectors, oov: str = "drop", vector_norm: str = "none",
                     word_weights: str = "none", sif_a: float = 1e-3, extra_words: list[str] = ()
                     ) -> tuple[Vocabulary, np.ndarray]:
    """The corpus' token types that have a vector, most frequent first, then `extra_words` (words without a
    vector, e.g. `words_to_train`'s, to be trained from zero rows), and their (V, E) float32 matrix.

    vector_norm "unit" scales every word's vector to L2 norm 1; "abtt" first post-processes the table
    with `all_but_the_top`, then scales to norm 1. word_weights "sif" then multiplies each word's
    vector by `sif_weights` of its count in `corpus` (no labels are used). Padding, `<unk>` and the
    extra words' rows stay zero.

    Raises:
        ValueError: unknown `oov`, `vector_norm` or `word_weights`, or `sif_a` <= 0.
    """
    if vector_norm not in CLASSIFIER_VECTOR_NORMS:
        raise ConfigError(f"vector_norm must be one of {CLASSIFIER_VECTOR_NORMS}, got {vector_norm!r}")
    if word_weights not in WORD_WEIGHTS:
        raise ConfigError(f"word_weights must be one of {WORD_WEIGHTS}, got {word_weights!r}")
    counts = corpus.type_counts()
    order = np.argsort(-counts, kind="stable")
    specials = [PAD] + ([UNK] if oov == "unk" else [])
    kept = [t for t in order if counts[t] > 0 and corpus.types[t] in vectors.index]
    words = specials + [corpus.types[t] for t in kept]
    matrix = np.zeros((len(words) + len(extra_words), vectors.embedding_dims), dtype=np.float32)
    rows = [vectors.index[w] for w in words[len(specials):]]
    matrix[len(specials):len(words)] = vectors.vectors[rows]
    words_part = matrix[len(specials):len(words)]
    normalise(words_part, vector_norm)
    if word_weights == "sif":
        words_part *= sif_weights(counts[kept], counts.sum(), sif_a)[:, None].astype(np.float32)
    return Vocabulary(words + list(extra_words), oov), matrix


def vocabulary_from_vectors(vectors: WordVectors, oov: str = "drop", vector_norm: str = "none"
                            ) -> tuple[Vocabulary, np.ndarray]:
    """Every word of the vector file, in the file's order, and their (V, E) float32 matrix (padding and
    `<unk>` first, zero), `vector_norm` applied over the whole table: the chapter's pre-vectorised
    pipeline, which looks every token up in the file (used for imported Keras models).

    Raises:
        ValueError: unknown `oov` or `vector_norm`.
    """
    if vector_norm not in CLASSIFIER_VECTOR_NORMS:
        raise ValueError(f"vector_norm must be one of {CLASSIFIER_VECTOR_NORMS}, got {vector_norm!r}")
    specials = [PAD] + ([UNK] if oov == "unk" else [])
    words = specials + sorted(vectors.index, key=vectors.index.__getitem__)
    matrix = np.zeros((len(words), vectors.embedding_dims), dtype=np.float32)
    matrix[len(specials):] = vectors.vectors[[vectors.index[w] for w in words[len(specials):]]]
    normalise(matrix[len(specials):], vector_norm)
    return Vocabulary(words, oov), matrix


def normalise(words_part: np.ndarray, vector_norm: str) -> None:
    """Apply `vector_norm` ("none", "unit" or "abtt", see `build_vocabulary`) to (V, E) rows in place."""
    if vector_norm == "abtt":
        words_part[:] = all_but_the_top(words_part)
    if vector_norm in ("unit", "abtt"):
        norms = np.linalg.norm(words_part, axis=1, keepdims=True)
        np.divide(words_part, norms, out=words_part, where=norms > 0)


def sif_weights(counts: np.ndarray, total_tokens: int, a: float = 1e-3) -> np.ndarray:
    """(V,) smooth inverse frequency a / (a + p(w)), p(w) = counts / total_tokens (all tokens, OOV
    included), divided by its maximum so that the rarest word keeps weight 1.

    Arora, Liang & Ma, "A Simple but Tough-to-Beat Baseline for Sentence Embeddings", ICLR 2017,
    eq. 1; its section 4.1.1 finds a = 1e-3 to 1e-4 best. On IMDB's training split (6.9M tokens) the
    maximum is 0.9999, so the division matters only for small corpora, where every word is frequent.

    Raises:
        ValueError: `a` <= 0.
    """
    if not a > 0:
        raise ConfigError(f"sif_a must be > 0, got {a!r}")
    weights = a / (a + np.asarray(counts, dtype=np.float64) / max(int(total_tokens), 1))
    return weights / weights.max() if len(weights) else weights


def all_but_the_top(vectors: np.ndarray, components: int | None = None) -> np.ndarray:
    """(V, E) word vectors minus their mean and minus their projections on the top `components`
    principal directions (default E // 100: 3 for 300-d vectors, 0 for 50-d).

    Mu & Viswanath, "All-but-the-Top: Simple and Effective Postprocessing for Word Representations",
    ICLR 2018, Algorithm 1 (they set the number of directions to about E / 100). Common directions
    (word frequency, the table's mean) dominate raw vectors; removing them makes words more distinct.
    """
    components = vectors.shape[1] // 100 if components is None else components
    centered = vectors - vectors.mean(axis=0, keepdims=True) if len(vectors) else vectors.copy()
    if components == 0 or len(vectors) <= components:
        return centered
    covariance = centered.T.astype(np.float64) @ centered  # (E, E): the principal directions are its eigenvectors
    top = np.linalg.eigh(covariance)[1][:, ::-1][:, :components].T.astype(vectors.dtype)
    return centered - (centered @ top.T) @ top


def encode(corpus: TokenizedCorpus, vocab: Vocabulary) -> tuple[EncodedDocs, OOVCount]:
    """Map every token to its id; OOV tokens are dropped (book) or mapped to `<unk>`.

    The documents share `corpus`' token ids (mapped as they are read, see `EncodedDocs`).
    """
    type_to_id = np.array([vocab.index.get(t, vocab.unk_id) for t in corpus.types] or [0], dtype=np.int32)
    docs = EncodedDocs(corpus.flat, corpus.offsets, corpus.labels.copy(), corpus.index, type_to_id)
    tokens = int(corpus.lengths.sum())
    if vocab.oov == "drop":
        return docs, OOVCount(tokens, tokens - int(docs.lengths.sum()))
    stored_order = np.sort(corpus.index)  # the map read front to back (see `gather`)
    unk = sum(int((type_to_id[t] == vocab.unk_id).sum()) for _, t in gather(corpus.flat, corpus.offsets, stored_order))
    return docs, OOVCount(tokens, unk)


def encode_texts(token_lists: list[list[str]], vocab: Vocabulary) -> EncodedDocs:
    """Encode already-tokenised texts (prediction time); labels are -1."""
    docs = [[vocab.index.get(t, vocab.unk_id) for t in tokens] for tokens in token_lists]
    docs = [[i for i in d if i >= 0] for d in docs]
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs], dtype=np.int64)]).astype(np.int64)
    ids = np.fromiter((i for d in docs for i in d), dtype=np.int32)
    return EncodedDocs(ids, offsets, np.full(len(docs), -1, dtype=np.int64))
