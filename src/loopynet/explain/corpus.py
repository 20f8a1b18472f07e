"""Corpus-level evidence: token attributions (Integrated Gradients + n-gram shares) aggregated per word
over many documents: the words with the strongest mean positive and negative evidence, with counts.

A word's mean is over its occurrences (positions the model reads) in the documents; words seen fewer than
`min_count` times are left out (a rare word's mean is noise).
"""

from __future__ import annotations

import numpy as np

from loopynet.explain.attribution import DEFAULT_STEPS, attribute
from loopynet.explain.network import Network


def corpus_attributions(network: Network, rows: list[np.ndarray], steps: int = DEFAULT_STEPS, batch_size: int = 16,
                        progress=None) -> tuple[np.ndarray, np.ndarray]:
    """(ids (M,), attributions (M,) float64) of every read position of every document of `rows` (token-id
    arrays), documents batched by length.

    Raises:
        CompletenessError: IG's completeness error exceeds its tolerance for a document.
    """
    rows = [np.asarray(r[: network.maxlen], dtype=np.int64) for r in rows]
    order = np.argsort([len(r) for r in rows], kind="stable")
    all_ids, all_values = [], []
    for start in range(0, len(order), batch_size):
        batch = [rows[i] for i in order[start : start + batch_size]]
        ids, lengths = network.rnn_batch(batch)
        ig = attribute(network, ids, lengths, steps, internal_batch_size=max(128, len(batch)))
        for b, row in enumerate(batch):
            values = network.ngram_shares(row)
            values[: int(lengths[b])] += ig.per_position[b, : int(lengths[b])]
            all_ids.append(row), all_values.append(values)
        if progress is not None:
            progress(len(batch))
    if not all_ids:
        return np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(all_ids), np.concatenate(all_values)


def top_words(ids: np.ndarray, values: np.ndarray, words: list[str], top: int = 30, min_count: int = 5) -> dict:
    """{"positive": [{"word", "mean", "count"}] strongest first, "negative": [...], "min_count", "positions"}:
    the `top` words with the largest and the most negative mean attribution among words read at least
    `min_count` times."""
    counts = np.bincount(ids, minlength=len(words))
    sums = np.bincount(ids, weights=values, minlength=len(words))
    eligible = np.flatnonzero(counts >= min_count)
    means = sums[eligible] / counts[eligible]

    def rows(order):
        return [{"word": words[eligible[i]], "mean": float(means[i]), "count": int(counts[eligible[i]])} for i in order]

    positive = [i for i in np.argsort(-means, kind="stable") if means[i] > 0][:top]
    negative = [i for i in np.argsort(means, kind="stable") if means[i] < 0][:top]
    return {"positive": rows(positive), "negative": rows(negative), "min_count": min_count, "positions": int(len(ids))}
