"""Occlusion by deletion: the change of the prediction when one token is removed from the text.

Zeiler & Fergus (2014) occlude by replacement; here the token is deleted and the rest re-positioned, as if
the text had been written without it: replacing it by the zero vector in place would shift where the book's
Flatten head reads padding. Tokens cut by maxlen move up when an earlier token is deleted, as they would.
"""

from __future__ import annotations

import numpy as np

from loopynet.explain.network import Network


def occlusion(network: Network, ids: np.ndarray, rest: np.ndarray, logit: float) -> np.ndarray:
    """(L,) float64: logit(text) - logit(text without the token at position i), for the L read ids (L,);
    `rest` (K,) are the kept ids after maxlen. Positive: the token pushed towards the positive class."""
    everything = np.concatenate([ids, rest])
    rows = [np.delete(everything, i)[: network.maxlen] for i in range(len(ids))]
    if not rows:
        return np.zeros(0)
    return logit - network.logits(rows).astype(np.float64)
