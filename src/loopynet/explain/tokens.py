"""What the model reads of a text: every Treebank token with its status, never dropped silently.

status "in": a word with a vector, read at `position`; "oov": no vector (the book's `oov="drop"` skips it,
position None; with `oov="unk"` it is read as the zero `<unk>` vector, so it has a position but carries no
evidence); "cut": after the first `maxlen` kept tokens (the book's pad_trunc keeps the first maxlen), not read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loopynet.data.tokenize import TokenizerOptions, tokenize
from loopynet.data.vocab import Vocabulary


@dataclass
class ReadText:
    """tokens: [{"token", "status", "position"}] in text order; ids (L,) int64 the ids the model reads
    (L <= maxlen); rest (K,) the kept ids cut by maxlen (they move in when an earlier token is deleted)."""

    tokens: list[dict]
    ids: np.ndarray
    rest: np.ndarray


def read_text(text: str, vocab: Vocabulary, options: TokenizerOptions, maxlen: int) -> ReadText:
    """Tokenise `text` as the model's pipeline does and mark each token in, oov or cut."""
    tokens, kept = [], []
    for token in tokenize(text, options):
        i = vocab.index.get(token, vocab.unk_id)
        if i < 0:  # dropped (the book's policy)
            tokens.append({"token": token, "status": "oov", "position": None})
            continue
        position = len(kept)
        kept.append(i)
        status = "cut" if position >= maxlen else ("in" if i != vocab.unk_id else "oov")
        tokens.append({"token": token, "status": status, "position": position if position < maxlen else None})
    kept = np.asarray(kept, dtype=np.int64)
    return ReadText(tokens, kept[:maxlen], kept[maxlen:])


def summary(read: ReadText) -> str | None:
    """One line on what the model did not read, or None when it read every token."""
    counts = {s: sum(t["status"] == s for t in read.tokens) for s in ("in", "oov", "cut")}
    parts = []
    if counts["in"] == 0:
        parts.append("0 tokens in vocabulary: nothing to attribute")
    if counts["oov"]:
        parts.append(f"{counts['oov']} token(s) out of vocabulary (no vector: no evidence)")
    if counts["cut"]:
        parts.append(f"{counts['cut']} token(s) after maxlen={len(read.ids)} cut: not read by the model")
    return "; ".join(parts) or None
