"""CoNLL-2003 column files: one token per line `TOKEN POS CHUNK NER`, a blank line between sentences,
`-DOCSTART- -X- -X- O` lines between documents (skipped), IOB2 tags.

    sentences = read_conll("../shared/data/conll2003/train.txt")   # 14,041 Sentence objects
    sentences[0].tokens, sentences[0].tags
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from loopynet.config import TAG_SCHEMES, ConfigError
from loopynet.errors import UserError
from loopynet.data.text import decode_utf8

SPLIT_FILES = {"train": "train.txt", "valid": "valid.txt", "validation": "valid.txt", "dev": "valid.txt",
               "test": "test.txt"}
TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC")


class ConllError(UserError, ValueError):
    """A CoNLL file that is missing or has a malformed line (the message names file and line)."""


@dataclass
class Sentence:
    """One sentence: parallel lists of tokens, POS tags, chunk tags and NER tags."""

    tokens: list[str]
    pos: list[str]
    chunks: list[str]
    tags: list[str]

    def __len__(self) -> int:
        return len(self.tokens)


def to_iobes(tags: list[str]) -> list[str]:
    """IOB2 -> IOBES (Ratinov & Roth 2009's BILOU; Lample et al. 2016, sec. 4): a one-token entity's B- becomes
    S-, an entity's last I- becomes E-. Lossless: `[iob2_tag(t) for t in to_iobes(tags)] == tags`."""
    out = []
    for i, tag in enumerate(tags):
        continues = i + 1 < len(tags) and tags[i + 1] == "I-" + tag[2:]
        if tag.startswith("B-") and not continues:
            tag = "S-" + tag[2:]
        elif tag.startswith("I-") and not continues:
            tag = "E-" + tag[2:]
        out.append(tag)
    return out


def iob2_tag(tag: str) -> str:
    """One IOBES tag as IOB2: S- -> B-, E- -> I-; IOB2 tags are returned unchanged."""
    prefix = {"S-": "B-", "E-": "I-"}.get(tag[:2])
    return prefix + tag[2:] if prefix else tag


def scheme_tags(scheme: str) -> list[str]:
    """The CoNLL-2003 tag names a model learns in `scheme`: TAGS for iob2; O plus B-, I-, E-, S- per type for iobes."""
    if scheme == "iob2":
        return list(TAGS)
    return ["O"] + [f"{prefix}-{tag[2:]}" for tag in TAGS[1::2] for prefix in "BIES"]


def with_scheme(sentences: list[Sentence], scheme: str) -> list[Sentence]:
    """`sentences` with their (IOB2) tags in `scheme`.

    Raises:
        ValueError: unknown scheme.
    """
    if scheme not in TAG_SCHEMES:
        raise ConfigError(f"tag_scheme must be one of {TAG_SCHEMES}, got {scheme!r}")
    if scheme == "iob2":
        return sentences
    return [Sentence(s.tokens, s.pos, s.chunks, to_iobes(s.tags)) for s in sentences]


def split_path(data: str | os.PathLike, split: str) -> Path:
    """The file of `split` ("train", "valid"/"dev", "test") in folder `data`, or `data` itself when a file.

    Raises:
        ConllError: no such folder or file.
    """
    path = Path(data)
    if path.is_file():
        return path
    if not path.is_dir():
        raise ConllError(f"--data {path}: no such folder or file")
    if split not in SPLIT_FILES:
        raise ConllError(f"unknown split {split!r}; use one of {sorted(set(SPLIT_FILES))}")
    file = path / SPLIT_FILES[split]
    if not file.is_file():
        raise ConllError(f"--data {path}: no {SPLIT_FILES[split]} for split {split!r}")
    return file


def read_conll(path: str | os.PathLike, columns: int = 4) -> list[Sentence]:
    """Read a CoNLL-2003 column file into sentences.

    Columns are separated by single spaces or tabs; the last column is the NER tag. Lines starting
    with `-DOCSTART-` end the current sentence and are skipped; blank (or whitespace-only) lines end
    a sentence; several blank lines in a row, and a missing final blank line, are fine. A `\\r\\n`
    line ending is accepted.

    Raises:
        ConllError: missing file, non-UTF-8 bytes, or a line without exactly `columns` fields, or with
            a NER tag that is not `O` or `B-`/`I-` + type (message: file:line and the line).
    """
    path = Path(path)
    if not path.is_file():
        raise ConllError(f"{path}: no such file")
    sentences: list[Sentence] = []
    rows: list[list[str]] = []

    def flush():
        if rows:
            tokens, pos, chunks, tags = (list(col) for col in zip(*rows))
            sentences.append(Sentence(tokens, pos, chunks, tags))
            rows.clear()

    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = decode_utf8(raw).rstrip("\r\n")
            except UnicodeDecodeError as err:
                raise ConllError(f"{path}:{number}: not UTF-8 ({err.reason} at byte {err.start})") from None
            if not line.strip():
                flush()
                continue
            fields = line.split()
            if fields[0] == "-DOCSTART-":
                flush()
                continue
            if len(fields) != columns:
                raise ConllError(f"{path}:{number}: expected {columns} columns (TOKEN POS CHUNK NER), "
                                 f"found {len(fields)}: {line!r}")
            tag = fields[-1]
            if not (tag == "O" or (len(tag) > 2 and tag[:2] in ("B-", "I-"))):
                raise ConllError(f"{path}:{number}: NER tag {tag!r} is not O, B-TYPE or I-TYPE: {line!r}")
            rows.append(fields)
    flush()
    return sentences


def read_split(data: str | os.PathLike, split: str) -> list[Sentence]:
    """`read_conll` of `split` in the CoNLL folder `data` (or of `data` when it is a file).

    Raises:
        ConllError: the file is missing, malformed, or holds no sentence.
    """
    path = split_path(data, split)
    sentences = read_conll(path)
    if not sentences:
        raise ConllError(f"{path}: no sentence (empty, or only -DOCSTART- lines)")
    return sentences


def counts(sentences: list[Sentence]) -> dict:
    """Sentences, tokens, longest sentence, and entity counts per type (IOB2: one per B- tag)."""
    entities: dict[str, int] = {}
    for s in sentences:
        for tag in s.tags:
            if tag.startswith("B-"):
                entities[tag[2:]] = entities.get(tag[2:], 0) + 1
    return {"sentences": len(sentences), "tokens": sum(len(s) for s in sentences),
            "max_len": max((len(s) for s in sentences), default=0), "entities": dict(sorted(entities.items()))}
