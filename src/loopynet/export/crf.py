"""Viterbi decoding of a linear-chain CRF in NumPy, with the tag scheme's forbidden transitions impossible.

A CRF scores a tag path y (n tokens, K tags) as
`start[y0] + sum_t emissions[t, y_t] + sum_t transitions[y_{t-1}, y_t] + end[y_{n-1}]` (pytorch-crf's
convention: transitions[i, j] is the score of tag i followed by tag j); Viterbi finds the best path by
dynamic programming (Lafferty et al. 2001; Rabiner 1989, sec. III-B). Here a transition the scheme
forbids (IOB2: I-X only after B-X or I-X; IOBES: after B-X/I-X only I-X/E-X, elsewhere only O, B-, S-;
no path starts inside an entity nor, in IOBES, ends inside one) scores -inf, so no decoded path holds one,
whatever the trained scores say.
"""

from __future__ import annotations

import numpy as np

INSIDE = {"iob2": ("I",), "iobes": ("I", "E")}  # prefixes that continue an entity


def _split(tag: str) -> tuple[str, str]:
    """(prefix, type) of a tag: "B-PER" -> ("B", "PER"); "O" and tags without a prefix -> ("O", "")."""
    prefix, _, kind = tag.partition("-")
    return (prefix, kind) if kind and prefix in ("B", "I", "E", "S") else ("O", "")


def allowed_transitions(tag_names: list[str], scheme: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean (start (K,), transitions (K, K) from row to column, end (K,)) masks of what `scheme` allows.

    Raises:
        ValueError: an unknown scheme.
    """
    if scheme not in INSIDE:
        raise ValueError(f"tag scheme must be one of {sorted(INSIDE)}, got {scheme!r}")
    tags = [_split(t) for t in tag_names]
    inside = INSIDE[scheme]
    open_ = ("B", "I") if scheme == "iobes" else ()  # prefixes after which an IOBES entity must go on

    def follows(prev: tuple[str, str] | None, tag: tuple[str, str]) -> bool:
        if prev is not None and prev[0] in open_:
            return tag[0] in inside and tag[1] == prev[1]
        if tag[0] in inside:  # an entity continues: only after its own type (IOB2: B-X or I-X)
            return prev is not None and prev[0] in ("B", "I") and prev[1] == tag[1]
        return True

    start = np.array([follows(None, t) for t in tags])
    transitions = np.array([[follows(p, t) for t in tags] for p in tags])
    end = np.array([t[0] not in open_ for t in tags])
    return start, transitions, end


def viterbi(emissions: np.ndarray, start: np.ndarray, transitions: np.ndarray, end: np.ndarray,
            allowed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> list[int]:
    """The best tag path of one sentence.

    Args:
        emissions: (n, K) scores of the sentence's n real tokens (n may be 0: an empty path).
        start, end: (K,) scores of the first and last tag; transitions: (K, K), row tag then column tag.
        allowed: masks from `allowed_transitions`; disallowed scores become -inf.

    Returns:
        n tag ids.
    """
    n = emissions.shape[0]
    if n == 0:
        return []
    emissions, start, transitions, end = (np.asarray(a, dtype=np.float64) for a in (emissions, start, transitions, end))
    if allowed is not None:
        start, transitions, end = (np.where(mask, a, -np.inf) for mask, a in zip(allowed, (start, transitions, end)))
    score = start + emissions[0]  # (K,) best score of a path ending in each tag
    back = np.zeros((n, emissions.shape[1]), dtype=np.int64)
    for t in range(1, n):
        candidates = score[:, None] + transitions  # (K previous, K next)
        back[t] = candidates.argmax(0)
        score = candidates.max(0) + emissions[t]
    path = [int((score + end).argmax())]
    for t in range(n - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return path[::-1]
