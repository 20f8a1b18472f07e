"""The data report printed and stored after loading: what the book's silent policies did."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from loopynet.data.tokenized import TokenizedCorpus
from loopynet.data.vocab import EncodedDocs, OOVCount


@dataclass
class DataReport:
    """Counts for one part of the data (train, validation or test).

    documents: documents read; tokens: Treebank tokens before OOV handling; oov_tokens: tokens
    without a vector (dropped by the book's policy); oov_rate = oov_tokens / tokens;
    empty_documents: documents with no token left (fed as all padding); empty_reasons: their count per
    reason ("no tokens": the text has none, e.g. an empty file; "no token with a vector": every token is
    OOV and dropped); empty_files: the first 10 of their paths; truncated_documents: documents with more
    than `maxlen` tokens left (only the first `maxlen` are used); tokens_cut: tokens those documents
    lose to `maxlen` ({"total", "min", "median", "max"} per truncated document, all 0 when none is
    truncated).
    """

    part: str
    documents: int
    tokens: int
    oov_tokens: int
    oov_rate: float
    empty_documents: int
    truncated_documents: int
    maxlen: int
    class_counts: dict
    tokens_cut: dict
    empty_reasons: dict
    empty_files: list

    def line(self) -> str:
        empty = f"{self.empty_documents:,} empty"
        if self.empty_documents:
            reasons = ", ".join(f"{n:,} {why}" for why, n in self.empty_reasons.items() if n)
            more = ", ..." if self.empty_documents > len(self.empty_files) else ""
            empty += f" ({reasons}: {', '.join(self.empty_files)}{more})"
        return (f"{self.part}: {self.documents:,} documents, {self.tokens:,} tokens, "
                f"OOV {self.oov_tokens:,} ({self.oov_rate:.2%}), {empty}, "
                f"{self.truncated_documents:,} truncated to {self.maxlen} tokens (cutting {self.tokens_cut['total']:,} "
                f"tokens, {self.tokens_cut['min']:,}-{self.tokens_cut['max']:,} per document, median "
                f"{self.tokens_cut['median']:g}), classes {self.class_counts}")

    def to_dict(self) -> dict:
        return asdict(self)


HIDDEN_LISTED = 10
EMPTY_LISTED = 10


def hidden_report(data, hidden: list[str], log: Callable[[str], None]) -> dict:
    """{"hidden_entries_skipped": N, "hidden_entries": the first 10}; logs one line when N > 0."""
    if hidden:
        more = f", ... ({len(hidden) - HIDDEN_LISTED} more)" if len(hidden) > HIDDEN_LISTED else ""
        log(f"--data {data}: skipped {len(hidden)} hidden entries ({', '.join(hidden[:HIDDEN_LISTED])}{more})")
    return {"hidden_entries_skipped": len(hidden), "hidden_entries": hidden[:HIDDEN_LISTED]}


def make_report(part: str, docs: EncodedDocs, oov: OOVCount, maxlen: int, class_names: list[str],
                corpus: TokenizedCorpus) -> DataReport:
    """The report of `docs`, the encoding of `corpus` (its paths and token counts before OOV handling)."""
    lengths = docs.lengths
    empty = np.flatnonzero(lengths == 0)
    no_tokens = int((corpus.lengths[empty] == 0).sum())
    labels, counts = np.unique(docs.labels, return_counts=True)
    return DataReport(
        part=part,
        documents=len(docs),
        tokens=oov.tokens,
        oov_tokens=oov.oov_tokens,
        oov_rate=oov.oov_tokens / oov.tokens if oov.tokens else 0.0,
        empty_documents=len(empty),
        truncated_documents=int((lengths > maxlen).sum()),
        maxlen=maxlen,
        class_counts={class_names[int(l)] if l >= 0 else "?": int(c) for l, c in zip(labels, counts)},
        tokens_cut=_tokens_cut(lengths, maxlen),
        empty_reasons={"no tokens": no_tokens, "no token with a vector": len(empty) - no_tokens},
        empty_files=[corpus.paths[i] for i in empty[:EMPTY_LISTED]],
    )


def _tokens_cut(lengths: np.ndarray, maxlen: int) -> dict:
    cut = lengths[lengths > maxlen] - maxlen
    if not len(cut):
        return {"total": 0, "min": 0, "median": 0, "max": 0}
    return {"total": int(cut.sum()), "min": int(cut.min()), "median": float(np.median(cut)), "max": int(cut.max())}
