"""Padding, truncation and batches of token ids.

The book's `pad_trunc` (NLP in Action 7.x/8.1.5) keeps the first `maxlen` tokens of a document and
pads shorter ones at the END with zero vectors; loopynet does the same with id 0 (a zero vector).
Note this differs from Keras' `pad_sequences` (pre-padding, pre-truncation).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from loopynet.data.vocab import EncodedDocs


def pad_trunc(docs: EncodedDocs, index: np.ndarray, maxlen: int, trim: bool = False) -> np.ndarray:
    """(len(index), maxlen) int64 ids: the first `maxlen` ids of each document, then zeros.

    With `trim` the width is the longest of these documents instead (at most `maxlen`, at least 1):
    for padding-safe models, where trailing padding changes nothing.
    """
    index = np.asarray(index)
    longest = int(docs.lengths[index].max(initial=0))
    width = max(1, min(longest, maxlen)) if trim else maxlen
    out = np.zeros((len(index), width), dtype=np.int64)
    for row, i in enumerate(index):
        ids = docs.first_ids(i, maxlen)
        out[row, : len(ids)] = ids
    return out


def batches(docs: EncodedDocs, batch_size: int, maxlen: int, order: np.ndarray | None = None
            ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (ids (B, maxlen) int64, labels (B,) int64) in `order` (default: document order).

    The last batch is smaller when len(docs) is not a multiple of batch_size (as Keras' fit).
    """
    order = np.arange(len(docs)) if order is None else order
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        yield pad_trunc(docs, index, maxlen), docs.labels[index]
