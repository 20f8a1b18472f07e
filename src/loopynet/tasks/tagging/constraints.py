"""Which tag sequences a scheme allows: IOB2 (an I-X continues a B-X or I-X) and IOBES (a B-X or I-X is
followed by I-X or E-X; every other tag by O, B-Y or S-Y; a sentence starts with O, B- or S- and, in
IOBES, ends with O, E- or S-). Tags outside the scheme's pattern (e.g. a stray tag in the data) are
allowed everywhere. The CRF's Viterbi decoding takes these as impossible transitions
(`loopynet.models.tagger.constrained_viterbi`), and the metrics count predicted sequences that break them.
"""

from __future__ import annotations

import numpy as np


def _parts(tag: str) -> tuple[str, str]:
    """('B', 'PER') for 'B-PER', ('O', '') for 'O', ('?', tag) for anything else."""
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BIES":
        return tag[0], tag[2:]
    return "?", tag


def allowed_transitions(tag_names: list[str], scheme: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start (K,), transitions (K, K) [from, to], end (K,)) boolean masks of what `scheme` allows.

    Raises:
        ValueError: unknown scheme.
    """
    if scheme not in ("iob2", "iobes"):
        raise ValueError(f"scheme must be iob2 or iobes, got {scheme!r}")
    parts = [_parts(t) for t in tag_names]
    inside = ("B", "I")  # tags that leave an entity open
    continues = ("I", "E") if scheme == "iobes" else ("I",)

    def may_follow(prev: tuple[str, str] | None, nxt: tuple[str, str]) -> bool:
        if nxt[0] == "?" or (prev is not None and prev[0] == "?"):
            return True
        open_entity = prev is not None and prev[0] in inside
        if scheme == "iobes" and open_entity:  # B-X / I-X must be continued by I-X or E-X
            return nxt[0] in continues and nxt[1] == prev[1]
        if nxt[0] in continues:  # I-X (and E-X) only inside an entity of the same type
            return open_entity and nxt[1] == prev[1]
        return True

    start = np.array([may_follow(None, p) for p in parts])
    transitions = np.array([[may_follow(a, b) for b in parts] for a in parts])
    end = np.array([p[0] == "?" or scheme == "iob2" or p[0] in ("O", "E", "S") for p in parts])
    return start, transitions, end


def is_valid(sequence: list[int], allowed: tuple[np.ndarray, np.ndarray, np.ndarray]) -> bool:
    """Whether tag ids `sequence` obey the masks of `allowed_transitions` (an empty sequence does)."""
    start, transitions, end = allowed
    if not sequence:
        return True
    return bool(start[sequence[0]] and end[sequence[-1]]
                and all(transitions[a, b] for a, b in zip(sequence, sequence[1:])))
