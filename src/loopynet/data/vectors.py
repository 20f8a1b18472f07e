"""Pretrained word vectors through gensim: word2vec binary (`.bin`, `.bin.gz`, the Google News format)
and text files (word2vec text with a `count dims` header, or GloVe without one).
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors

from loopynet.errors import UserError


class VectorsError(UserError, ValueError):
    """A vector file that is missing, empty, truncated or not in a known format."""


@dataclass
class WordVectors:
    """A word -> row table: `vectors` (V, E) float32, `index[word]` its row."""

    index: dict[str, int]
    vectors: np.ndarray
    fingerprint: dict

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


def is_binary(path: Path) -> bool:
    return path.name.endswith((".bin", ".bin.gz"))


def _has_header(path: Path) -> bool:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        first = f.readline().split()
    return len(first) == 2 and all(part.isdigit() for part in first)


def load_vectors(path: str | Path) -> WordVectors:
    """Load a vector file with gensim's `KeyedVectors.load_word2vec_format`.

    Binary when the name ends in `.bin` or `.bin.gz`, else text (GloVe files without a header too).

    Raises:
        VectorsError: the file is missing, empty, truncated or malformed (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise VectorsError(f"--vectors {path}: no such file")
    if path.stat().st_size == 0:
        raise VectorsError(f"--vectors {path}: file is empty")
    binary = is_binary(path)
    try:
        no_header = not binary and not _has_header(path)
        kv = KeyedVectors.load_word2vec_format(str(path), binary=binary, no_header=no_header)
    except (EOFError, ValueError, UnicodeDecodeError, OSError, IndexError) as err:
        kind = "word2vec binary" if binary else "word2vec/GloVe text"
        raise VectorsError(f"--vectors {path}: not a complete {kind} vector file ({type(err).__name__}: {err})") from None
    if len(kv) == 0 or kv.vector_size < 1:
        raise VectorsError(f"--vectors {path}: holds no vectors ({len(kv)} words of {kv.vector_size} dimensions)")
    return WordVectors(dict(kv.key_to_index), np.asarray(kv.vectors, dtype=np.float32), fingerprint(path))
