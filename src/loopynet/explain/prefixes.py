"""The prediction after every prefix of a text: P(first k tokens) for k = 1..L, batched.

The view of NLP in Action 8.1.2 ("the loss at every step"): how the model's opinion evolves as it reads.
Each prefix is a document of its own (for the book's Flatten head, padded to maxlen as at prediction).
"""

from __future__ import annotations

import numpy as np

from loopynet.explain.network import Network


def prefix_logits(network: Network, ids: np.ndarray) -> np.ndarray:
    """(L,) float64 logit of ids[:k] for k = 1..L, for the L read ids (L,)."""
    rows = [ids[:k] for k in range(1, len(ids) + 1)]
    return network.logits(rows).astype(np.float64) if rows else np.zeros(0)
