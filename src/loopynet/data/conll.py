"""CoNLL-2003 column files: one token per line `TOKEN POS CHUNK NER`, a blank line between sentences,
`-DOCSTART- -X- -X- O` lines between documents (skipped wherever they stand).

The tags of a file may be IOB2 (B- starts every entity; the shared CoNLL-2003 copy), IOB1 (the
original CoNLL-2003 release: I- starts an entity, B- only one that directly follows an entity of the
same type) or IOBES (S- single-token entities, E- last tokens). `read_tagged` converts any of them to
IOB2, the scheme counts and metrics use; with "auto" it detects the scheme (`detect_scheme`).

    sentences = read_conll("../shared/data/conll2003/train.txt")   # 14,041 Sentence objects
    sentences[0].tokens, sentences[0].tags
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from loopynet.config import INPUT_SCHEMES, TAG_SCHEMES, ConfigError
from loopynet.errors import UserError
from loopynet.data.text import decode_utf8

SPLIT_FILES = {"train": "train.txt", "valid": "valid.txt", "validation": "valid.txt", "dev": "valid.txt",
               "test": "test.txt"}
TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC")


class ConllError(UserError, ValueError):
    """A CoNLL file that is missing or has a malformed line (the message names file and line)."""


@dataclass
class Sentence:
    """One sentence: parallel lists of tokens, POS tags, chunk tags and NER tags; `line`: the file's line
    number of its first token (0 when not read from a file)."""

    tokens: list[str]
    pos: list[str]
    chunks: list[str]
    tags: list[str]
    line: int = 0

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

    Columns are separated by tabs (a line with a tab is split at tabs only, so a token may hold a
    space) or else by runs of spaces; the last column is the NER tag. Lines starting with `-DOCSTART-`
    end the current sentence and are skipped, wherever they stand; blank (or whitespace-only) lines end
    a sentence; several blank lines in a row, and a missing final blank line, are fine. A `\\r\\n`
    line ending and a leading byte-order mark are accepted. Tags are returned as written (see `read_tagged`).

    Raises:
        ConllError: missing file, non-UTF-8 bytes, or a line without exactly `columns` fields, or with
            a NER tag that is not `O` or `B-`/`I-`/`E-`/`S-` + type (message: file:line and the line).
    """
    path = Path(path)
    if not path.is_file():
        raise ConllError(f"{path}: no such file")
    sentences: list[Sentence] = []
    rows: list[list[str]] = []
    first_line = 0

    def flush():
        if rows:
            tokens, pos, chunks, tags = (list(col) for col in zip(*rows))
            sentences.append(Sentence(tokens, pos, chunks, tags, first_line))
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
            fields = [f.strip() for f in line.strip().split("\t")] if "\t" in line else line.split()
            if fields[0] == "-DOCSTART-":
                flush()
                continue
            if len(fields) != columns:
                raise ConllError(f"{path}:{number}: expected {columns} columns (TOKEN POS CHUNK NER), "
                                 f"found {len(fields)}: {line!r}")
            tag = fields[-1]
            if not (tag == "O" or (len(tag) > 2 and tag[:2] in ("B-", "I-", "E-", "S-"))):
                raise ConllError(f"{path}:{number}: NER tag {tag!r} is not O, B-TYPE, I-TYPE, E-TYPE or S-TYPE: {line!r}")
            if not rows:
                first_line = number
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


def detect_scheme(sentences: list[Sentence]) -> tuple[str, str]:
    """(scheme, why) of the tags of `sentences`: "iobes" when an E- or S- tag occurs; "iob1" when an
    I- tag starts an entity (at a sentence start, after O, or after another type's tag), which IOB2
    never does; else "iob2". `why` names the first tag that decided (file line when known)."""
    for s in sentences:
        for i, tag in enumerate(s.tags):
            if tag[:2] in ("E-", "S-"):
                return "iobes", f"{tag} at {_where(s, i)}"
    for s in sentences:
        for i, tag in enumerate(s.tags):
            if _starts_with_i(s.tags, i):
                after = "a sentence start" if i == 0 else s.tags[i - 1]
                return "iob1", f"{tag} after {after} at {_where(s, i)}"
    return "iob2", "no I- tag starts an entity, no E-/S- tag"


def _where(s: Sentence, i: int) -> str:
    return f"line {s.line + i}" if s.line else f"token {i + 1} of a sentence"


def _starts_with_i(tags: list[str], i: int) -> bool:
    return tags[i].startswith("I-") and (i == 0 or tags[i - 1] == "O" or tags[i - 1][2:] != tags[i][2:])


def to_iob2(sentences: list[Sentence], scheme: str, path: str | os.PathLike = "") -> list[Sentence]:
    """`sentences` with their tags converted from `scheme` ("iob1", "iob2", "iobes") to IOB2.

    IOB1: an I- tag that starts an entity becomes B- (Tjong Kim Sang & Veenstra 1999, "Representing
    text chunks"); IOBES: S- -> B-, E- -> I-.

    Raises:
        ConllError: a tag that `scheme` cannot hold (E-/S- in IOB1/IOB2 data; message: file:line).
    """
    if scheme not in INPUT_SCHEMES[1:]:
        raise ConfigError(f"input scheme must be one of {INPUT_SCHEMES[1:]}, got {scheme!r}")
    out = []
    for s in sentences:
        if scheme != "iobes":
            bad = next((i for i, t in enumerate(s.tags) if t[:2] in ("E-", "S-")), None)
            if bad is not None:
                raise ConllError(f"{path}:{s.line + bad}: tag {s.tags[bad]} is not {scheme.upper()}; "
                                 "use --input-scheme iobes (or auto)")
        if scheme == "iob1":
            tags = ["B-" + t[2:] if _starts_with_i(s.tags, i) else t for i, t in enumerate(s.tags)]
        elif scheme == "iobes":
            tags = [iob2_tag(t) for t in s.tags]
        else:
            tags = list(s.tags)
        out.append(Sentence(s.tokens, s.pos, s.chunks, tags, s.line))
    return out


def read_tagged(data: str | os.PathLike, split: str, input_scheme: str = "auto") -> tuple[list[Sentence], str]:
    """The sentences of `split` (see `read_split`) with IOB2 tags, and a note on the scheme read
    ("train.txt: tags read as IOB1 (detected: I-ORG after O at line 3)").

    Raises:
        ConllError: as `read_split`, or a tag that the given scheme cannot hold.
    """
    if input_scheme not in INPUT_SCHEMES:
        raise ConfigError(f"input_scheme must be one of {INPUT_SCHEMES}, got {input_scheme!r}")
    path = split_path(data, split)
    sentences = read_split(data, split)
    if input_scheme == "auto":
        scheme, why = detect_scheme(sentences)
        note = f"{path.name}: tags read as {scheme.upper()} (--input-scheme auto; {why})"
    else:
        scheme, note = input_scheme, f"{path.name}: tags read as {input_scheme.upper()} (--input-scheme {input_scheme})"
    return to_iob2(sentences, scheme, path), note


def counts(sentences: list[Sentence]) -> dict:
    """Sentences, tokens, longest sentence, and entity counts per type (IOB2: one per B- tag)."""
    entities: dict[str, int] = {}
    for s in sentences:
        for tag in s.tags:
            if tag.startswith("B-"):
                entities[tag[2:]] = entities.get(tag[2:], 0) + 1
    return {"sentences": len(sentences), "tokens": sum(len(s) for s in sentences),
            "max_len": max((len(s) for s in sentences), default=0), "entities": dict(sorted(entities.items()))}
