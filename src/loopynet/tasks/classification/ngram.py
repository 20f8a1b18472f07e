"""Fitting the n-gram part of an `NgramEnsemble` (loopynet.models.ngram) and the mix of its two logits.

`fit_ngram` (before the recurrent part is trained): NB weighting (Wang & Manning 2012, "NBSVM") of the
n-gram features (binary, or log(1 + count): `ModelConfig.ngram_tf`), each n-gram f scaled by its log-count
ratio r_f = log((p_f / |p|_1) / (q_f / |q|_1)), p = 1 + number of positive training documents containing f, q = the same for negatives; then a
logistic regression on those scaled features (Adam with L2 weight decay, the epoch with the lowest
validation loss kept). Settings: `loopynet.config.NgramConfig`.

`fit_mix` (after): the two logits combined as Mesnil et al. (2014) did, by a logistic regression fitted
on the validation part: logit = a * rnn + b * ngram + c.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from loopynet.config import NgramConfig
from loopynet.data.batching import pad_trunc
from loopynet.data.vocab import EncodedDocs
from loopynet.models.ngram import NgramEnsemble, doc_ngrams, feature_values, lookup
from loopynet.tasks.classification.task import predict_proba


def _features(model: NgramEnsemble, docs: EncodedDocs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, keys, counts) of every document of `docs`, first model.config.maxlen tokens."""
    rows, keys, counts = [], [], []
    for start in range(0, len(docs), 2000):
        index = np.arange(start, min(start + 2000, len(docs)))
        r, k, c = doc_ngrams(pad_trunc(docs, index, model.config.maxlen), model.n, model.vocabulary_size)
        rows.append(r + start), keys.append(k), counts.append(c)
    return np.concatenate(rows), np.concatenate(keys), np.concatenate(counts)


def _bags(model: NgramEnsemble, docs: EncodedDocs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(feature index (M,), doc offsets (N+1,), feature values (M,) float32) of `docs` over the fitted keys."""
    rows, keys, counts = _features(model, docs)
    where, found = lookup(model.ngram_keys.cpu().numpy(), keys)
    rows, where = rows[found], where[found]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(docs)))])
    return where, offsets, feature_values(counts[found], model.config.ngram_tf).astype(np.float32)


def fit_ngram(model: NgramEnsemble, train: EncodedDocs, validation: EncodedDocs | None, config: NgramConfig,
              seed: int, log: Callable[[str], None] = print) -> None:
    """Fit the n-gram model of `model` on `train`, choosing its epoch on `validation`; `seed` orders the batches."""
    start = time.perf_counter()
    rows, keys, _ = _features(model, train)
    unique, counts = np.unique(keys, return_counts=True)
    table = unique[counts >= config.min_df]
    model.ngram_keys = torch.from_numpy(table)
    where, found = lookup(table, keys)
    labels = train.labels[rows[found]]
    p = 1.0 + np.bincount(where[found][labels == 1], minlength=len(table))
    q = 1.0 + np.bincount(where[found][labels == 0], minlength=len(table))
    ratio = np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)
    log(f"n-gram model: {len(table):,} 1..{model.n}-grams in >= {config.min_df} training documents "
        f"({time.perf_counter() - start:.0f}s)")
    weights = _train_logistic(model, train, validation, torch.from_numpy(ratio), config, seed, log)
    model.ngram_weights = weights[0] * torch.from_numpy(ratio)
    model.ngram_bias = weights[1]
    log(f"n-gram model fitted in {time.perf_counter() - start:.0f}s")


def _train_logistic(model: NgramEnsemble, train: EncodedDocs, validation: EncodedDocs | None, ratio: torch.Tensor,
                    config: NgramConfig, seed: int, log) -> tuple[torch.Tensor, torch.Tensor]:
    index, offsets, values = (torch.from_numpy(a) for a in _bags(model, train))
    val = _bags(model, validation) if validation is not None and len(validation) else None
    labels = torch.from_numpy(train.labels).float()
    generator = torch.Generator().manual_seed(seed)
    w = torch.zeros(len(ratio), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.Adam([w, b], lr=config.lr, weight_decay=config.weight_decay)
    best = (float("inf"), w.detach().clone(), b.detach().clone(), 0)
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(len(labels), generator=generator)
        for s in range(0, len(order), config.batch_size):
            docs = order[s : s + config.batch_size]
            z = bag_sums(w * ratio, index, offsets, docs, values) + b
            loss = F.binary_cross_entropy_with_logits(z, labels[docs])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if val is None:
            best = (0.0, w.detach().clone(), b.detach().clone(), epoch)
            continue
        with torch.no_grad():
            vi, vo, vv = (torch.from_numpy(a) for a in val)
            z = bag_sums(w * ratio, vi, vo, torch.arange(len(validation)), vv) + b
            y = torch.from_numpy(validation.labels).float()
            val_loss = float(F.binary_cross_entropy_with_logits(z, y))
            accuracy = float(((z >= 0).float() == y).float().mean())
        log(f"n-gram model epoch {epoch}: val_loss {val_loss:.4f} val_accuracy {accuracy:.4f}")
        if val_loss < best[0]:
            best = (val_loss, w.detach().clone(), b.detach().clone(), epoch)
    return best[1], best[2]


def fit_mix(model: NgramEnsemble, validation: EncodedDocs | None, log: Callable[[str], None] = print) -> None:
    """Fit the mix (a, b, c) on `validation` by logistic regression on the two logits (L-BFGS); without a
    validation part the two logits are added (1, 1, 0)."""
    if validation is None or not len(validation):
        model.mix = torch.tensor([1.0, 1.0, 0.0])
        return
    model.mix = torch.tensor([1.0, 0.0, 0.0])
    p = np.clip(predict_proba(model, validation, model.config.maxlen), 1e-12, 1 - 1e-12)
    z_rnn = torch.from_numpy(np.log(p) - np.log1p(-p)).float()
    model.mix = torch.tensor([0.0, 1.0, 0.0])
    p = np.clip(predict_proba(model, validation, model.config.maxlen), 1e-12, 1 - 1e-12)
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
    model.mix = mix.detach().clone()
    mixed = model.mix[0] * z_rnn + model.mix[1] * z_ngram + model.mix[2]
    accuracy = {name: float(((z >= 0).float() == y).float().mean())
                for name, z in (("rnn", z_rnn), ("ngram", z_ngram), ("mixed", mixed))}
    log(f"mix on validation: logit = {model.mix[0]:.3f} * rnn + {model.mix[1]:.3f} * ngram + {model.mix[2]:.3f}; "
        f"val_accuracy rnn {accuracy['rnn']:.4f}, ngram {accuracy['ngram']:.4f}, mixed {accuracy['mixed']:.4f}")


def bag_sums(weights: torch.Tensor, index: torch.Tensor, offsets: torch.Tensor, docs: torch.Tensor,
             values: torch.Tensor | None = None) -> torch.Tensor:
    """(len(docs),) sums of `weights` over each document's feature indices (a CSR slice), each times its
    feature value in `values` (aligned with `index`; None = 1)."""
    starts, ends = offsets[docs], offsets[docs + 1]
    counts = ends - starts
    positions = torch.repeat_interleave(starts - torch.cumsum(counts, 0) + counts, counts) + torch.arange(int(counts.sum()))
    bag = torch.repeat_interleave(torch.arange(len(docs)), counts)
    # index_select, not weights[...]: its backward (index_add) is deterministic on CPU, the backward of
    # advanced indexing (index_put_ with accumulate) is not with several threads (runs differed by ~1e-7)
    gathered = weights.index_select(0, index[positions])
    if values is not None:
        gathered = gathered * values[positions]
    return torch.zeros(len(docs), dtype=weights.dtype).index_add(0, bag, gathered)
