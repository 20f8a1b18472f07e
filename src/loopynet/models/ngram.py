"""A naive-Bayes-weighted logistic model on word n-grams, and its ensemble with a recurrent classifier.

NB weighting (Wang & Manning 2012, "NBSVM"): each n-gram f present in a document (binary features)
is scaled by its log-count ratio r_f = log((p_f / |p|_1) / (q_f / |q|_1)), p = 1 + number of positive
training documents containing f, q = the same for negatives; a logistic regression with L2 weight
decay is trained on those scaled features (Adam, epochs chosen on the validation part). The
recurrent model and this one are combined as Mesnil et al. (2014) did, by a logistic regression on
the two logits fitted on the validation part: logit = a * rnn + b * ngram + c.

N-grams are taken over the model's token ids (words with a vector; padding 0 never part of one), so
the vocabulary is the recurrent model's; an n-gram is kept when at least `min_df` training documents
contain it. Keys are exact (an n-gram of ids as a base-V number), so there are no hash collisions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from loopynet.config import ModelConfig


def doc_ngrams(ids: np.ndarray, n: int, vocabulary_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct 1..n-grams of each post-padded row of `ids` (B, T).

    Returns (rows (M,) int64, keys (M,) int64), sorted by row then key; a k-gram's key is
    `(k - 1) * V**n + sum_j ids[t + j] * V**(k - 1 - j)`.
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
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows, keys = np.concatenate(rows), np.concatenate(keys)
    order = np.lexsort((keys, rows))
    rows, keys = rows[order], keys[order]
    keep = np.ones(len(rows), bool)
    keep[1:] = (rows[1:] != rows[:-1]) | (keys[1:] != keys[:-1])
    return rows[keep], keys[keep]


def lookup(table: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(where, found): for each of `keys`, its position in the sorted `table` and whether it is there
    (where is only meaningful where found)."""
    if not len(table):
        return np.zeros(len(keys), np.int64), np.zeros(len(keys), bool)
    where = np.searchsorted(table, keys).clip(max=len(table) - 1)
    return where, table[where] == keys


class NgramEnsemble(nn.Module):
    """A `RecurrentClassifier` plus the NB-weighted n-gram logistic model, mixed on validation.

    forward(ids (B, T)) -> logits (B,). In training mode only the recurrent part runs (it is what `fit`
    trains; the n-gram part is fitted before, in `before_fit`); in eval mode the mixed logit. The
    recurrent part reads the first `config.rnn_maxlen` tokens, the n-gram part all `config.maxlen`.
    Buffers: ngram_keys (F,) int64 sorted, ngram_weights (F,) = NB ratio * weight, ngram_bias (1,),
    mix (3,) = (a, b, c), (1, 0, 0) until `after_fit`.
    """

    def __init__(self, config: ModelConfig, rnn: nn.Module, seed: int = 0, min_df: int = 2, epochs: int = 4,
                 lr: float = 0.01, weight_decay: float = 0.0, batch_size: int = 128):
        super().__init__()
        if config.ngram < 1:
            raise ValueError(f"ngram must be >= 1, got {config.ngram}")
        self.config, self.rnn, self.n, self.seed = config, rnn, config.ngram, seed
        self.vocabulary_size = rnn.embeddings.shape[0]
        if (self.n + 1) * float(self.vocabulary_size) ** self.n >= 2.0**62:
            raise ValueError(f"--ngram {self.n} with {self.vocabulary_size:,} words overflows 64-bit n-gram keys")
        self.min_df, self.epochs, self.lr, self.weight_decay, self.batch_size = min_df, epochs, lr, weight_decay, batch_size
        self.register_buffer("ngram_keys", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("ngram_weights", torch.zeros(0))
        self.register_buffer("ngram_bias", torch.zeros(1))
        self.register_buffer("mix", torch.tensor([1.0, 0.0, 0.0]))

    @property
    def padding_safe(self) -> bool:
        return getattr(self.rnn, "padding_safe", False)

    def make_task(self, maxlen: int):
        """Training batches for the recurrent part only (its own maxlen)."""
        return self.rnn.make_task(self.rnn.config.maxlen)

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
        z = torch.full((ids.shape[0],), c)
        if a:
            z = z + a * self.rnn(rnn_ids)
        if b:
            z = z + b * self.ngram_logits(ids.numpy()).to(z.dtype)
        return z

    def ngram_logits(self, ids: np.ndarray) -> torch.Tensor:
        """(B,) logits of the n-gram model alone."""
        rows, keys = doc_ngrams(ids, self.n, self.vocabulary_size)
        where, found = lookup(self.ngram_keys.numpy(), keys)
        sums = np.bincount(rows[found], weights=self.ngram_weights.numpy()[where[found]], minlength=ids.shape[0])
        return torch.from_numpy(sums).float() + self.ngram_bias

    # --- fitting -----------------------------------------------------------------------------------
    def _features(self, docs) -> tuple[np.ndarray, np.ndarray]:
        """(rows, keys) of every document of `docs` (EncodedDocs), first config.maxlen tokens."""
        from loopynet.data.batching import pad_trunc

        rows, keys = [], []
        for start in range(0, len(docs), 2000):
            index = np.arange(start, min(start + 2000, len(docs)))
            r, k = doc_ngrams(pad_trunc(docs, index, self.config.maxlen), self.n, self.vocabulary_size)
            rows.append(r + start), keys.append(k)
        return np.concatenate(rows), np.concatenate(keys)

    def _bags(self, docs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(feature index (M,), doc offsets (N+1,), rows (M,)) of `docs` over the fitted keys."""
        rows, keys = self._features(docs)
        where, found = lookup(self.ngram_keys.numpy(), keys)
        rows, where = rows[found], where[found]
        offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(docs)))])
        return where, offsets, rows

    def before_fit(self, train, validation, log: Callable[[str], None] = print) -> None:
        """Fit the n-gram model on `train` (EncodedDocs), choosing its epoch on `validation`."""
        import time

        start = time.perf_counter()
        rows, keys = self._features(train)
        unique, counts = np.unique(keys, return_counts=True)
        table = unique[counts >= self.min_df]
        self.ngram_keys = torch.from_numpy(table)
        where, found = lookup(table, keys)
        labels = train.labels[rows[found]]
        p = 1.0 + np.bincount(where[found][labels == 1], minlength=len(table))
        q = 1.0 + np.bincount(where[found][labels == 0], minlength=len(table))
        ratio = np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)
        log(f"n-gram model: {len(table):,} 1..{self.n}-grams in >= {self.min_df} training documents "
            f"({time.perf_counter() - start:.0f}s)")
        weights = self._train_logistic(train, validation, torch.from_numpy(ratio), log)
        self.ngram_weights = weights[0] * torch.from_numpy(ratio)
        self.ngram_bias = weights[1]
        log(f"n-gram model fitted in {time.perf_counter() - start:.0f}s")

    def _train_logistic(self, train, validation, ratio: torch.Tensor, log) -> tuple[torch.Tensor, torch.Tensor]:
        index, offsets, _ = self._bags(train)
        index, offsets = torch.from_numpy(index), torch.from_numpy(offsets)
        val = self._bags(validation) if validation is not None and len(validation) else None
        labels = torch.from_numpy(train.labels).float()
        generator = torch.Generator().manual_seed(self.seed)
        w = torch.zeros(len(ratio), requires_grad=True)
        b = torch.zeros(1, requires_grad=True)
        optimizer = torch.optim.Adam([w, b], lr=self.lr, weight_decay=self.weight_decay)
        best = (float("inf"), w.detach().clone(), b.detach().clone(), 0)
        for epoch in range(1, self.epochs + 1):
            order = torch.randperm(len(labels), generator=generator)
            for s in range(0, len(order), self.batch_size):
                docs = order[s : s + self.batch_size]
                z = _bag_sums(w * ratio, index, offsets, docs) + b
                loss = F.binary_cross_entropy_with_logits(z, labels[docs])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if val is None:
                best = (0.0, w.detach().clone(), b.detach().clone(), epoch)
                continue
            with torch.no_grad():
                vi, vo, _ = val
                z = _bag_sums(w * ratio, torch.from_numpy(vi), torch.from_numpy(vo), torch.arange(len(validation))) + b
                y = torch.from_numpy(validation.labels).float()
                val_loss = float(F.binary_cross_entropy_with_logits(z, y))
                accuracy = float(((z >= 0).float() == y).float().mean())
            log(f"n-gram model epoch {epoch}: val_loss {val_loss:.4f} val_accuracy {accuracy:.4f}")
            if val_loss < best[0]:
                best = (val_loss, w.detach().clone(), b.detach().clone(), epoch)
        return best[1], best[2]

    def after_fit(self, validation, log: Callable[[str], None] = print) -> None:
        """Fit the mix (a, b, c) on `validation` by logistic regression on the two logits (L-BFGS)."""
        if validation is None or not len(validation):
            self.mix = torch.tensor([1.0, 1.0, 0.0])
            return
        from loopynet.train.loop import predict_proba

        self.mix = torch.tensor([1.0, 0.0, 0.0])
        p = np.clip(predict_proba(self, validation, self.config.maxlen), 1e-12, 1 - 1e-12)
        z_rnn = torch.from_numpy(np.log(p) - np.log1p(-p)).float()
        self.mix = torch.tensor([0.0, 1.0, 0.0])
        p = np.clip(predict_proba(self, validation, self.config.maxlen), 1e-12, 1 - 1e-12)
        z_ngram = torch.from_numpy(np.log(p) - np.log1p(-p)).float()
        y = torch.from_numpy(validation.labels).float()
        mix = torch.tensor([1.0, 1.0, 0.0], requires_grad=True)
        optimizer = torch.optim.LBFGS([mix], max_iter=200, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            loss = F.binary_cross_entropy_with_logits(mix[0] * z_rnn + mix[1] * z_ngram + mix[2], y)
            loss.backward()
            return loss

        optimizer.step(closure)
        self.mix = mix.detach().clone()
        accuracy = {name: float(((z >= 0).float() == y).float().mean())
                    for name, z in (("rnn", z_rnn), ("ngram", z_ngram), ("mixed", self.mix[0] * z_rnn + self.mix[1] * z_ngram + self.mix[2]))}
        log(f"mix on validation: logit = {self.mix[0]:.3f} * rnn + {self.mix[1]:.3f} * ngram + {self.mix[2]:.3f}; "
            f"val_accuracy rnn {accuracy['rnn']:.4f}, ngram {accuracy['ngram']:.4f}, mixed {accuracy['mixed']:.4f}")


def _bag_sums(weights: torch.Tensor, index: torch.Tensor, offsets: torch.Tensor, docs: torch.Tensor) -> torch.Tensor:
    """(len(docs),) sums of `weights` over each document's feature indices (a CSR slice)."""
    starts, ends = offsets[docs], offsets[docs + 1]
    counts = ends - starts
    positions = torch.repeat_interleave(starts - torch.cumsum(counts, 0) + counts, counts) + torch.arange(int(counts.sum()))
    bag = torch.repeat_interleave(torch.arange(len(docs)), counts)
    # index_select, not weights[...]: its backward (index_add) is deterministic on CPU, the backward of
    # advanced indexing (index_put_ with accumulate) is not with several threads (runs differed by ~1e-7)
    return torch.zeros(len(docs), dtype=weights.dtype).index_add(0, bag, weights.index_select(0, index[positions]))
