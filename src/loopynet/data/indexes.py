"""Token and character indexes of the tagger (rows of its embedding tables), and its casing classes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from loopynet.data.conll import Sentence

PAD, UNK = 0, 1


@dataclass
class WordIndex:
    """Token -> row of the embedding table: the exact string, else (lowercase_fallback) its lowercase,
    else <unk> (row 1). Row 0 is padding."""

    words: list[str]
    lowercase_fallback: bool = True
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def lookup(self, token: str) -> int:
        i = self.index.get(token)
        if i is None and self.lowercase_fallback:
            i = self.index.get(token.lower())
        return UNK if i is None else i


@dataclass
class CharIndex:
    """Character -> id; 0 padding, 1 unknown character."""

    chars: list[str]
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        self.index = {c: i for i, c in enumerate(self.chars)}

    def ids(self, token: str, max_len: int) -> list[int]:
        return [self.index.get(c, UNK) for c in token[:max_len]]

    @classmethod
    def from_sentences(cls, sentences: list[Sentence], min_count: int = 1) -> CharIndex:
        counts = Counter(c for s in sentences for t in s.tokens for c in t)
        return cls(["<pad>", "<unk>"] + sorted(c for c, n in counts.items() if n >= min_count))


def casing(token: str) -> int:
    """Index into CASINGS (loopynet.config) of a token's casing class (0 is padding)."""
    digits = sum(c.isdigit() for c in token)
    if token.isdigit():
        return 5
    if digits / max(len(token), 1) > 0.5:
        return 6
    if token.islower():
        return 1
    if token.isupper():
        return 2
    if token[:1].isupper():
        return 3
    if digits:
        return 7
    if not any(c.isalnum() for c in token):
        return 8
    if any(c.isalpha() for c in token):
        return 4
    return 9
