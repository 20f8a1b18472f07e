"""Pretrained word vectors: word2vec binary (the Google News format), word2vec text (a `count dims`
header) and GloVe text (no header), plain or gzip/bz2/xz/zip-compressed, whatever the file is named.

`loopynet.data.vector_files` sniffs what a file is; this module reads its rows and checks each: a
row with the wrong number of values, a word that is not UTF-8 or holds a space, a value that is not a
finite number, a repeated word, a header whose count differs from the rows the file holds, or a file
that ends early. Each is an error naming the file, the line (text) or byte offset (binary), and what
was expected. With `errors="skip"` (`--vectors-errors skip`) bad rows are skipped, a count mismatch
is accepted, and `WordVectors.notes` says what was skipped (nothing is skipped silently).

gensim's `KeyedVectors.load_word2vec_format` reads the same formats but reports neither the line nor
the row count, stops at the header's count silently, and cannot skip a bad row; so the rows are read
here (the format is gensim's `save_word2vec_format`: `word v1 ... vD\\n` text rows, or `word ` then D
little-endian float32 values, optionally followed by `\\n`, per binary record).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from loopynet.config import VECTORS_ERRORS
from loopynet.data.text import decode_utf8
from loopynet.data.vector_files import Payload, VectorsError, open_payload

__all__ = ["VECTORS_ERRORS", "VectorsError", "WordVectors", "fingerprint", "load_vectors"]

MAX_WORD_BYTES = 1000  # a binary record's word longer than this means the file is not what its header says
NOTES_LISTED = 5
_CHUNK = 1 << 20


@dataclass
class WordVectors:
    """A word -> row table: `vectors` (V, E) float32, `index[word]` its row.

    skipped: rows left out under errors="skip"; notes: one line each on what was skipped or accepted.
    """

    index: dict[str, int]
    vectors: np.ndarray
    fingerprint: dict
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def embedding_dims(self) -> int:
        return self.vectors.shape[1]


def fingerprint(path: Path) -> dict:
    """Identity of a file: name, size in bytes and sha256 of its bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def load_vectors(path: str | Path, errors: str = "strict", member: str | None = None) -> WordVectors:
    """Load a vector file of any supported format (sniffed from its bytes, see module docstring).

    errors: "strict" (the first bad row or count mismatch raises) or "skip" (bad rows are skipped and
        counted in `skipped` / `notes`; a header count that differs from the rows is accepted).
    member: the file to read inside a zip archive of several.

    Raises:
        VectorsError: the file is missing, empty, of an unknown or refused format, malformed at a line
            or byte offset (strict), truncated (the message says how many vectors were read), or holds
            no vector.
    """
    if errors not in VECTORS_ERRORS:
        raise VectorsError(f"--vectors-errors must be one of {VECTORS_ERRORS}, got {errors!r}")
    path = Path(path)
    payload = open_payload(path, member)
    reader = _Rows(path, payload, errors)
    try:
        with payload.stream:
            (reader.binary if payload.kind == "binary" else reader.text)()
    except (OSError, EOFError, ValueError) as err:
        if isinstance(err, VectorsError):
            raise
        raise VectorsError(f"{reader.where}: cannot read after {len(reader.words):,} vectors "
                           f"({type(err).__name__}: {err})") from None
    if not reader.words:
        raise VectorsError(f"{reader.where}: holds no vectors")
    stamp = fingerprint(path) | ({"member": member} if member else {})
    notes = reader.notes if not reader.skipped else [f"skipped {reader.skipped:,} bad rows"] + reader.notes
    return WordVectors({w: i for i, w in enumerate(reader.words)}, np.stack(reader.rows).astype(np.float32, copy=False),
                       stamp, reader.skipped, [f"--vectors {path}: {n}" for n in notes])


class _Rows:
    """Reads the rows of one payload into `words` / `rows`, applying the errors policy."""

    def __init__(self, path: Path, payload: Payload, errors: str):
        self.path, self.payload, self.errors = path, payload, errors
        self.where = f"--vectors {path} ({payload.describe()})"
        self.words: list[str] = []
        self.rows: list[np.ndarray] = []
        self.first_at: dict[str, str] = {}
        self.skipped = 0
        self.notes: list[str] = []

    def problem(self, at: str, message: str) -> None:
        """A bad row: raise (strict) or count it and keep the first few as notes (skip)."""
        if self.errors == "strict":
            raise VectorsError(f"{self.where} {at}: {message} (--vectors-errors skip loads the other rows)")
        self.skipped += 1
        if self.skipped <= NOTES_LISTED:
            self.notes.append(f"{at}: {message}")

    def mismatch(self, message: str) -> None:
        """A header count that differs from the rows: an error (strict) or a note (skip)."""
        if self.errors == "strict":
            raise VectorsError(f"{self.where}: {message} (--vectors-errors skip accepts the rows there are)")
        self.notes.append(message)

    def add(self, at: str, word: str, values: np.ndarray) -> None:
        if not np.isfinite(values).all():
            return self.problem(at, f"word {word!r} has a value that is not a finite number")
        if word in self.first_at:
            return self.problem(at, f"word {word!r} repeats ({self.first_at[word]})")
        self.first_at[word] = at
        self.words.append(word)
        self.rows.append(values)

    def text(self) -> None:
        """word2vec text or GloVe rows: `word v1 ... vD`, one per line (blank lines are ignored)."""
        dims, count = self.payload.dims, self.payload.count
        number = 0
        for number, raw in enumerate(self.payload.stream, start=1):
            if number == 1 and count is not None:
                continue  # the header
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            fields = raw.split()
            if not fields:
                continue
            at = f"line {number}"
            if count is not None and len(self.words) + self.skipped == count:
                self.mismatch(f"the header says {count:,} vectors, but line {number} holds another row")
                count = None
            if len(fields) != dims + 1:
                word_part = fields[: len(fields) - dims]
                spaced = (len(fields) > dims + 1 and not any(map(_is_number, word_part[1:]))
                          and b" ".join(word_part).decode("utf-8", "replace"))
                self.problem(at, f"expected a word and {dims} values, found {len(fields)} fields"
                                 + (f" (a word with a space, {spaced!r}?)" if spaced else ""))
                continue
            try:
                word = decode_utf8(fields[0])
            except UnicodeDecodeError as err:
                self.problem(at, f"the word is not valid UTF-8 (byte {err.start} of the word: {fields[0][:40]!r})")
                continue
            try:
                values = np.array(fields[1:], dtype=np.float32)
            except ValueError:
                bad = next(f for f in fields[1:] if not _is_number(f))
                self.problem(at, f"value {bad.decode('utf-8', 'replace')!r} of word {word!r} is not a number")
                continue
            self.add(at, word, values)
        if count is not None and len(self.words) + self.skipped < count:
            self.mismatch(f"the header says {count:,} vectors, but the file ends at line {number} after "
                          f"{len(self.words) + self.skipped:,} rows (truncated?)")

    def binary(self) -> None:
        """word2vec binary records: `word ` then dims little-endian float32 values (then maybe `\\n`)."""
        dims, count = self.payload.dims, self.payload.count
        source = _Buffer(self.payload.stream, self.payload.header_bytes)
        for i in range(count):
            start = source.offset
            word_bytes = source.until_space(MAX_WORD_BYTES)
            if word_bytes is None:
                self.truncated(i, count, start, "a word")
                return
            if word_bytes is False:
                raise VectorsError(f"{self.where} byte {start:,}: no space within {MAX_WORD_BYTES} bytes after vector "
                                   f"{i:,}; not a word2vec binary record (is the header's dimension {dims} right?)")
            data = source.exactly(4 * dims)
            if data is None:
                self.truncated(i, count, start, f"{dims} float32 values")
                return
            at = f"byte {start:,} (vector {i + 1:,})"
            try:
                word = decode_utf8(word_bytes)
            except UnicodeDecodeError as err:
                self.problem(at, f"the word is not valid UTF-8 (byte {err.start} of the word: {word_bytes[:40]!r})")
                continue
            self.add(at, word, np.frombuffer(data, dtype="<f4").copy())
        rest = source.rest_is_blank()
        if rest is not True:
            self.mismatch(f"the header says {count:,} vectors, but more data follows them at byte {rest:,}")

    def truncated(self, read: int, count: int, offset: int, wanted: str) -> None:
        message = (f"the file ends at byte {offset:,} where vector {read + 1:,} of the header's {count:,} should start "
                   f"({wanted} expected): {read:,} vectors read (truncated?)")
        self.mismatch(message)


class _Buffer:
    """Buffered reads from a binary stream with the payload's byte offset (for messages)."""

    def __init__(self, stream, skip: int):
        self.stream = stream
        self.data = stream.read(skip + _CHUNK)
        self.pos = skip
        self.consumed = 0  # bytes dropped from the front of `data`

    @property
    def offset(self) -> int:
        return self.consumed + self.pos

    def _fill(self, need: int) -> bool:
        """Make `need` bytes available from pos; False at the end of the stream."""
        while len(self.data) - self.pos < need:
            more = self.stream.read(max(_CHUNK, need))
            if not more:
                return False
            self.consumed += self.pos
            self.data = self.data[self.pos :] + more
            self.pos = 0
        return True

    def until_space(self, limit: int):
        """The bytes up to the next space (leading newlines skipped), the space consumed; None at the
        end of the stream, False when no space comes within `limit` bytes."""
        while self._fill(1) and self.data[self.pos : self.pos + 1] in (b"\n", b"\r"):
            self.pos += 1
        self._fill(limit + 1)
        end = self.data.find(b" ", self.pos, self.pos + limit + 1)
        if end < 0:
            return None if len(self.data) - self.pos < limit + 1 else False
        word = self.data[self.pos : end]
        self.pos = end + 1
        return word

    def exactly(self, n: int):
        if not self._fill(n):
            return None
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def rest_is_blank(self):
        """True when only whitespace remains, else the offset of the first other byte."""
        while True:
            chunk = self.data[self.pos :]
            stripped = chunk.lstrip()
            if stripped:
                return self.offset + len(chunk) - len(stripped)
            self.consumed += len(self.data)
            self.pos, self.data = 0, self.stream.read(_CHUNK)
            if not self.data:
                return True


def _is_number(field: bytes) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True
