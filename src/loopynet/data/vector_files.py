"""What a vector file is, from its bytes, not its name: the container (gzip, bz2, xz, zip or none) and
the format inside (word2vec binary, word2vec text with a `count dims` header, headerless GloVe text).

Files people have are often misnamed (a text file called `.bin`, a binary one called `.vec`, a zip
called `.gz`), so the first bytes decide: compression magic numbers (gzip 1F 8B, bz2 "BZh", xz
FD "7zXZ", zip "PK\\3\\4"), then the first line of the payload. Formats loopynet must not read are
refused with what they are: Python pickles (gensim's `KeyedVectors.save`; unpickling an untrusted
file runs code), NumPy `.npy` arrays (the side files of such a save), tar archives.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from loopynet.data.text import BOM
from loopynet.errors import UserError

PEEK_BYTES = 1 << 16
_COMPRESSED = {b"\x1f\x8b": ("gzip", gzip.open), b"BZh": ("bz2", bz2.open), b"\xfd7zXZ\x00": ("xz", lzma.open)}
_HEADER = re.compile(rb"\s*(\d+)\s+(\d+)\s*")
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
CONVERT_HINT = ("convert it once, where you trust it: python -c \"from gensim.models import KeyedVectors; "
                "KeyedVectors.load('FILE').save_word2vec_format('FILE.bin', binary=True)\"")


class VectorsError(UserError, ValueError):
    """A vector file that is missing, empty, truncated, malformed or not in a known format (the message
    names the file, and the line or byte offset where it went wrong)."""


@dataclass
class Payload:
    """The decompressed bytes of a vector file: an open binary `stream`, and what was sniffed.

    kind: "binary" | "text" | "glove"; count, dims: the header's numbers (None for "glove"; dims is then
    the number of values on the first rows); container: "gzip", "bz2", "xz", "zip member NAME" or "";
    header_bytes: the header line's length in bytes (the payload's offset of the first record).
    """

    stream: BinaryIO
    kind: str
    count: int | None
    dims: int
    container: str
    header_bytes: int

    def describe(self) -> str:
        kind = {"binary": "word2vec binary", "text": "word2vec text", "glove": "headerless (GloVe) text"}[self.kind]
        return f"{kind}{f', {self.container}' if self.container else ''}"


def open_payload(path: Path, member: str | None = None) -> Payload:
    """Open `path`, look through its compression, and sniff the vector format of its contents.

    member: with a zip of several files, the one to read (`--vectors-member`).

    Raises:
        VectorsError: missing or empty file, a zip whose member is ambiguous or absent, a pickle, .npy
            or tar, or a first line that is neither a `count dims` header nor a `word v1 v2 ...` row.
    """
    if not path.is_file():
        raise VectorsError(f"--vectors {path}: no such file")
    if path.stat().st_size == 0:
        raise VectorsError(f"--vectors {path}: file is empty")
    stream, container = _decompressed(path, member)
    try:
        return _sniff(path, stream, container)
    except BaseException:
        stream.close()
        raise


def _decompressed(path: Path, member: str | None) -> tuple[BinaryIO, str]:
    with open(path, "rb") as f:
        magic = f.read(8)
    for prefix, (name, opener) in _COMPRESSED.items():
        if magic.startswith(prefix):
            return opener(path, "rb"), name
    if magic.startswith(b"PK\x03\x04") or magic.startswith(b"PK\x05\x06"):
        return _zip_member(path, member)
    if member is not None:
        raise VectorsError(f"--vectors {path}: --vectors-member {member} given, but the file is not a zip archive")
    return open(path, "rb"), ""


def _zip_member(path: Path, member: str | None) -> tuple[BinaryIO, str]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise VectorsError(f"--vectors {path}: damaged zip archive ({err})") from None
    names = [info.filename for info in archive.infolist() if not info.is_dir()]
    if member is None and len(names) != 1:
        archive.close()
        listing = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
        raise VectorsError(f"--vectors {path}: a zip archive with {len(names)} files ({listing}); "
                           "pick one with --vectors-member NAME")
    name = member if member is not None else names[0]
    if name not in names:
        archive.close()
        raise VectorsError(f"--vectors {path}: no member {name!r} in the zip archive; it holds {', '.join(names[:20])}")
    return archive.open(name), f"zip member {name}"


def _sniff(path: Path, stream: BinaryIO, container: str) -> Payload:
    head = _peek(stream, path)
    where = f"--vectors {path}{f' ({container})' if container else ''}"
    if not head.strip():
        raise VectorsError(f"{where}: holds no data")
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise VectorsError(f"{where}: a Python pickle (gensim's KeyedVectors.save / Word2Vec.save format), which "
                           f"loopynet does not unpickle (it can run code); {CONVERT_HINT}")
    if head.startswith(b"\x93NUMPY"):
        raise VectorsError(f"{where}: a NumPy .npy array (the side file gensim's KeyedVectors.save writes next to "
                           f"its pickle), not a vector file; {CONVERT_HINT} (FILE: the pickle)")
    if head[257:262] == b"ustar":
        raise VectorsError(f"{where}: a tar archive; extract the vector file from it and pass that")
    skip = len(BOM) if head.startswith(BOM) else 0
    first, _, rest = head[skip:].partition(b"\n")
    header = _HEADER.fullmatch(first)
    if header:
        count, dims = int(header[1]), int(header[2])
        if dims < 1:
            raise VectorsError(f"{where}: the header {first.decode().strip()!r} says {dims} dimensions")
        kind = "text" if _is_text(rest, count, dims, whole=len(head) < PEEK_BYTES) else "binary"
        return Payload(stream, kind, count, dims, container, skip + len(first) + 1)
    dims = _glove_dims(head[skip:])
    if dims:
        return Payload(stream, "glove", None, dims, container, skip)
    found = "binary data" if _CONTROL.search(first[:200]) else f"{first[:60].decode('utf-8', 'replace')!r}"
    raise VectorsError(f"{where}: line 1 is neither a word2vec header 'COUNT DIMS' nor a GloVe row 'word v1 v2 ...' "
                       f"(found {found}); expected a word2vec binary/text or GloVe text file")


def _peek(stream: BinaryIO, path: Path) -> bytes:
    """The first PEEK_BYTES of the payload; the stream is rewound (re-opened) to its start."""
    try:
        head = stream.read(PEEK_BYTES)
        stream.seek(0)
    except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError) as err:
        raise VectorsError(f"--vectors {path}: cannot decompress ({type(err).__name__}: {err})") from None
    return head


def _is_text(rest: bytes, count: int, dims: int, whole: bool) -> bool:
    """Whether the records after a header are text rather than binary.

    Text when one of the first 5 lines is a `word v1 ... v_dims` row (float32 bytes practically never
    form one); else binary when the bytes are exactly `count` binary records (`whole`: `rest` is all the
    payload), or when they hold a control byte or invalid UTF-8 (float32 bytes nearly always do); else text
    (a broken text file: its rows then fail with their line numbers, never load as binary garbage).
    """
    if any(_is_row(line, dims) for line in rest.split(b"\n")[:5]):
        return True
    if whole and _binary_records_fit(rest, count, dims):
        return False
    cut = rest[: rest.rfind(b"\n")] if b"\n" in rest else rest
    try:
        cut.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not _CONTROL.search(cut)


def _is_row(line: bytes, dims: int) -> bool:
    fields = line.split()
    return len(fields) == dims + 1 and _all_numbers(fields[1:])


def _binary_records_fit(rest: bytes, count: int, dims: int) -> bool:
    """Whether `rest` is exactly `count` word2vec binary records of `dims` values (plus whitespace)."""
    pos = 0
    for _ in range(count):
        while rest[pos : pos + 1] == b"\n":
            pos += 1
        space = rest.find(b" ", pos, pos + 1001)
        if space < 0 or b"\n" in rest[pos:space]:
            return False
        pos = space + 1 + 4 * dims
        if pos > len(rest):
            return False
    return not rest[pos:].strip()


def _glove_dims(head: bytes) -> int:
    """Values per row of a headerless text file: the most common `fields - 1` over its first lines
    whose values are numbers (so one odd row, e.g. a word with a space, does not decide); 0 if none."""
    lines = head.split(b"\n")[:-1] or [head]
    counts: dict[int, int] = {}
    for line in lines[:100]:
        fields = line.split()
        if len(fields) >= 2 and _all_numbers(fields[1:]) and not _CONTROL.search(line):
            counts[len(fields) - 1] = counts.get(len(fields) - 1, 0) + 1
    return max(counts, key=counts.get) if counts else 0


def _all_numbers(fields: list[bytes]) -> bool:
    try:
        [float(f) for f in fields]
    except ValueError:
        return False
    return True
