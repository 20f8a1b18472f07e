"""A naive-Bayes-weighted logistic model on word n-grams, and its ensemble with a recurrent classifier.

NB weighting (Wang & Manning 2012, "NBSVM"): each n-gram f present in a document (its feature value 1,
or log(1 + its count) with `config.ngram_tf` "log") is scaled by its log-count ratio
r_f = log((p_f / |p|_1) / (q_f / |q|_1)), p = 1 + number of positive training documents containing f,
q = the same for negatives; a logistic regression with L2 weight decay is trained on those scaled features (Adam, epochs chosen on the validation part). The
recurrent model and this one are combined as Mesnil et al. (2014) did, by a logistic regression on
the two logits fitted on the validation part: logit = a * rnn + b * ngram + c.

N-grams are taken over the model's token ids (words with a vector; padding 0 never part of one), so
the vocabulary is the recurrent model's; an n-gram is kept when at least `min_df` training documents
contain it. Keys are exact (an n-gram of ids as a base-V number), so there are no hash collisions.
"""

from __future__ import annotations

import numpy as np
import torch

from loopynet.config import ConfigError, ModelConfig
from loopynet.models.base import Network
from loopynet.models.recurrent_classifier import RecurrentClassifier


def doc_ngrams(ids: np.ndarray, n: int, vocabulary_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct 1..n-grams of each post-padded row of `ids` (B, T).

    Returns (rows (M,) int64, keys (M,) int64, counts (M,) int64: occurrences in the row), sorted by row
    then key; a k-gram's key is `(k - 1) * V**n + sum_j ids[t + j] * V**(k - 1 - j)`.
    """
    ids = np.asarray(ids, dtype=np.int64)
    T = ids.shape[1]
    lengths = (ids != 0).sum(1)
    rows, keys = [], []
    for k in range(1, n + 1):
        if T < k:
            break
        code = ids[:, : T - k + 1].copy()
        for j in range(1, k):
            code = code * vocabulary_size + ids[:, j : T - k + 1 + j]
        valid = np.arange(T - k + 1)[None, :] + k <= lengths[:, None]
        r, _ = np.nonzero(valid)
        rows.append(r)
        keys.append(code[valid] + (k - 1) * vocabulary_size**n)
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows, keys = np.concatenate(rows), np.concatenate(keys)
    order = np.lexsort((keys, rows))
    rows, keys = rows[order], keys[order]
    keep = np.ones(len(rows), bool)
    keep[1:] = (rows[1:] != rows[:-1]) | (keys[1:] != keys[:-1])
    first = np.flatnonzero(keep)
    return rows[keep], keys[keep], np.diff(np.append(first, len(rows)))


def feature_values(counts: np.ndarray, tf: str) -> np.ndarray:
    """(M,) float64 feature values of n-grams occurring `counts` (M,) times in their document: 1 ("binary",
    Wang & Manning 2012) or log(1 + count) ("log", a sublinear tf)."""
    return np.ones(len(counts)) if tf == "binary" else np.log1p(counts)


def ngram_occurrences(ids: np.ndarray, n: int, vocabulary_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every occurrence of a 1..n-gram in one document's token ids (L,) (no padding): (keys (M,), starts (M,),
    sizes (M,)), keyed as `doc_ngrams` keys them; an n-gram that occurs twice is listed twice."""
    ids = np.asarray(ids, dtype=np.int64)
    keys, starts, sizes = [], [], []
    for k in range(1, min(n, len(ids)) + 1):
        code = ids[: len(ids) - k + 1].copy()
        for j in range(1, k):
            code = code * vocabulary_size + ids[j : len(ids) - k + 1 + j]
        keys.append(code + (k - 1) * vocabulary_size**n)
        starts.append(np.arange(len(code)))
        sizes.append(np.full(len(code), k))
    if not keys:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(keys), np.concatenate(starts), np.concatenate(sizes)


def lookup(table: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(where, found): for each of `keys`, its position in the sorted `table` and whether it is there
    (where is only meaningful where found)."""
    if not len(table):
        return np.zeros(len(keys), np.int64), np.zeros(len(keys), bool)
    where = np.searchsorted(table, keys).clip(max=len(table) - 1)
    return where, table[where] == keys


class NgramEnsemble(Network):
    """A `RecurrentClassifier` plus the NB-weighted n-gram logistic model, mixed on validation.

    forward(ids (B, T)) -> logits (B,). In training mode only the recurrent part runs (it is what `fit`
    trains; the n-gram part is fitted before, by `loopynet.tasks.classification.ngram.fit_ngram`); in eval
    mode the mixed logit. The
    recurrent part reads the first `config.rnn_maxlen` tokens, the n-gram part all `config.maxlen`.
    Buffers: ngram_keys (F,) int64 sorted, ngram_weights (F,) = NB ratio * weight, ngram_bias (1,),
    mix (3,) = (a, b, c), (1, 0, 0) until `fit_mix`.
    """

    def __init__(self, config: ModelConfig, rnn: RecurrentClassifier):
        super().__init__()
        if config.ngram < 1:
            raise ValueError(f"ngram must be >= 1, got {config.ngram}")
        self.config, self.rnn, self.n = config, rnn, config.ngram
        self.vocabulary_size = rnn.embeddings.shape[0]
        if (self.n + 1) * float(self.vocabulary_size) ** self.n >= 2.0**62:
            raise ConfigError(f"--ngram {self.n} with {self.vocabulary_size:,} words overflows 64-bit n-gram keys")
        self.register_buffer("ngram_keys", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("ngram_weights", torch.zeros(0))
        self.register_buffer("ngram_bias", torch.zeros(1))
        self.register_buffer("mix", torch.tensor([1.0, 0.0, 0.0]))

    @property
    def padding_safe(self) -> bool:
        return self.rnn.padding_safe

    def sparse_parameters(self):
        return self.rnn.sparse_parameters()

    def resize_for(self, tensors: dict[str, torch.Tensor]) -> None:
        """Give the n-gram buffers the sizes of a saved model's (before load_state_dict)."""
        for name in ("ngram_keys", "ngram_weights"):
            if name in tensors:
                setattr(self, name, torch.zeros_like(tensors[name]))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rnn_ids = ids[:, : self.rnn.config.maxlen]
        if self.training:
            return self.rnn(rnn_ids)
        a, b, c = (float(v) for v in self.mix)
        z = torch.full((ids.shape[0],), c, device=ids.device)
        if a:
            z = z + a * self.rnn(rnn_ids)
        if b:
            z = z + b * self.ngram_logits(ids.cpu().numpy()).to(z.device, z.dtype)
        return z

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> the word vectors (B, min(T, rnn maxlen), E) the recurrent part reads."""
        return self.rnn.embed(ids[:, : self.rnn.config.maxlen])

    def forward_vectors(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, T, E) input vectors of the recurrent part (`embed(ids)`), lengths (B,) -> its share of the
        logits (B,): in eval mode a * rnn + c of the mix. The n-gram part reads token ids, not vectors: its
        share b * ngram_logits(ids) is forward(ids) minus this (and has no gradient in x)."""
        if self.training:
            return self.rnn.forward_vectors(x, lengths)
        a, _, c = (float(v) for v in self.mix)
        return c + a * self.rnn.forward_vectors(x, lengths)

    def ngram_logits(self, ids: np.ndarray) -> torch.Tensor:
        """(B,) logits of the n-gram model alone."""
        rows, keys, counts = doc_ngrams(ids, self.n, self.vocabulary_size)
        where, found = lookup(self.ngram_keys.cpu().numpy(), keys)
        values = self.ngram_weights.cpu().numpy()[where[found]] * feature_values(counts[found], self.config.ngram_tf)
        sums = np.bincount(rows[found], weights=values, minlength=ids.shape[0])
        return torch.from_numpy(sums).float() + self.ngram_bias.cpu()

    def token_shares(self, ids: np.ndarray) -> np.ndarray:
        """(L,) float64 exact per-token shares of the n-gram logit of one document's ids (L,) (no padding,
        at most config.maxlen): each distinct n-gram's weight times its feature value is split equally over
        the tokens of all its occurrences, so `token_shares(ids).sum() + ngram_bias == ngram_logits(ids[None])`
        (the model is linear in its n-gram features). Multiply by mix[1] for the share of the mixed logit."""
        keys, starts, sizes = ngram_occurrences(ids, self.n, self.vocabulary_size)
        where, found = lookup(self.ngram_keys.cpu().numpy(), keys)
        keys, starts, sizes, where = keys[found], starts[found], sizes[found], where[found]
        _, inverse, occurrences = np.unique(keys, return_inverse=True, return_counts=True)
        value = feature_values(occurrences, self.config.ngram_tf)
        per_token = (self.ngram_weights.cpu().numpy().astype(np.float64)[where] * value[inverse]
                     / (sizes * occurrences[inverse]))
        shares = np.zeros(len(ids))
        for j in range(self.n):  # token j of each k-gram (k > j)
            covered = sizes > j
            np.add.at(shares, starts[covered] + j, per_token[covered])
        return shares
