"""One view of every classifier network loopynet trains, for explaining it.

The book's `BookClassifier`, `RecurrentClassifier` (GRU/LSTM, bidirectional, stateful, last/mean/max/
flatten heads) and `NgramEnsemble` (a recurrent classifier plus a linear n-gram model, imdb-best) differ
in how many tokens each part reads and whether padding matters; `Network` hides that. The ensemble's
logit is `c + a * rnn + b * ngram` (its `mix`); the recurrent part is what gradients explain, the
n-gram part is linear and explained exactly by `NgramEnsemble.token_shares`.
"""

from __future__ import annotations

import numpy as np
import torch

from loopynet.data.batching import pad_trunc
from loopynet.data.vocab import EncodedDocs
from loopynet.device import device_of
from loopynet.tasks.classification.task import predict_logits


class Network:
    """A trained classifier network (in eval mode) seen as: ids -> logits, vectors -> logits, states.

    maxlen: tokens the whole model reads; rnn_maxlen: tokens the recurrent part reads (smaller only for
    the n-gram ensemble); padding_safe: whether trailing padding changes nothing (else every input is
    padded to rnn_maxlen, as the Flatten head needs); directions: 1 or 2 (bidirectional).
    """

    def __init__(self, model: torch.nn.Module):
        self.model = model.eval()
        self.device = device_of(model)  # batches follow the model's device, results come back as NumPy
        self.ensemble = hasattr(model, "token_shares")
        self.rnn = model.rnn if self.ensemble else model
        self.maxlen = model.config.maxlen
        self.rnn_maxlen = self.rnn.config.maxlen
        self.padding_safe = bool(getattr(self.rnn, "padding_safe", False))
        self.directions = 2 if self.rnn.config.bidirectional else 1
        self.mix = tuple(float(v) for v in model.mix) if self.ensemble else (1.0, 0.0, 0.0)

    def logits(self, rows: list[np.ndarray], batch_size: int = 128) -> np.ndarray:
        """(N,) float32 logits of N documents given as token-id arrays (each cut to maxlen), batched."""
        return predict_logits(self.model, _as_docs(rows), self.maxlen, batch_size)

    def rnn_batch(self, rows: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids (B, T) int64, lengths (B,)) of the recurrent part on the model's device: each row cut to
        rnn_maxlen, post-padded with 0 to the longest row (padding-safe) or to rnn_maxlen."""
        lengths = np.array([min(len(r), self.rnn_maxlen) for r in rows], dtype=np.int64)
        ids = pad_trunc(_as_docs(rows), np.arange(len(rows)), self.rnn_maxlen, trim=self.padding_safe)
        return torch.from_numpy(ids).to(self.device), torch.from_numpy(lengths).to(self.device)

    def rnn_logit_of_vectors(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, T, E), lengths (B,) -> (B,) the recurrent part's share of the logit, a * rnn(x)."""
        return self.mix[0] * self.rnn.forward_vectors(x, lengths)

    def baseline_logit(self, rnn_zero_logit: float) -> float:
        """The logit of the baseline input: c + rnn_zero_logit (already times a) + b * the n-gram bias (a
        baseline of zero vectors holds no n-gram)."""
        ngram = self.mix[1] * float(self.model.ngram_bias) if self.ensemble else 0.0
        return self.mix[2] + rnn_zero_logit + ngram

    def ngram_shares(self, ids: np.ndarray) -> np.ndarray:
        """(L,) the n-gram part's exact share of the mixed logit per token (zeros without an n-gram part)."""
        if not self.ensemble:
            return np.zeros(len(ids))
        return self.mix[1] * self.model.token_shares(ids)

    @torch.no_grad()
    def states(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (B, T) of `rnn_batch` -> (top-layer outputs (B, T, D) at every step, document vectors (B, D))."""
        out, lengths = self.rnn.encode(ids)
        return out, self.rnn.document_vector(out, lengths)

    @torch.no_grad()
    def vectors_and_logits(self, rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(document vectors (N, D), logits (N,)) of N token-id arrays from one pass of the recurrent part
        (the n-gram ensemble adds its own pass for the mixed logit)."""
        ids, _ = self.rnn_batch(rows)
        out, lengths = self.rnn.encode(ids)
        vectors = self.rnn.document_vector(out, lengths).cpu().numpy()
        if self.ensemble:
            return vectors, self.logits(rows)
        return vectors, self.rnn.head(out, lengths).cpu().numpy()  # eval mode: dropout is the identity


def document_rows(docs: EncodedDocs, maxlen: int) -> list[np.ndarray]:
    """The first `maxlen` token ids of every document of `docs`, in document order (int32 arrays), read
    through `EncodedDocs.first_ids`: a split read from the token cache stores token-type ids in cache order,
    mapped to vocabulary ids and re-ordered only when read, so its `ids` / `offsets` are not the documents."""
    return [docs.first_ids(i, maxlen) for i in range(len(docs))]


def _as_docs(rows: list[np.ndarray]) -> EncodedDocs:
    """Token-id arrays as EncodedDocs (labels -1)."""
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    flat = np.concatenate(rows).astype(np.int32) if rows else np.zeros(0, np.int32)
    return EncodedDocs(flat, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), np.full(len(rows), -1))
