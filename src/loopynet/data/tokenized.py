"""Tokenised corpora stored compactly (a type table + one flat int32 array), cached on disk.

Tokenising IMDB's 25,000 training reviews takes ~11 s on one core, so the result is cached under
`$LOOPYNET_HOME/cache/` keyed by the data's fingerprint, the split, the tokenizer and its version,
and the decoding option. A cache hit does not open the data at all.

A cache entry is two files: `corpus-<key>.flat.npy`, the (tokens,) int32 type ids, and `corpus-<key>.npz`
(offsets, labels, type table, names), written second and so marking a complete entry. A hit memory-maps
the token ids read-only: they are read from the page cache as documents are used, never copied whole,
and `release_pages` hands the pages a pass has read back to the OS, so a process's memory does not grow
with the corpus (benchmarks/bench_growth.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nltk
import numpy as np

from loopynet.data.corpus import Corpus, is_archive, read_corpus
from loopynet.data.tokenize import BOOK, TOKENIZER_NAME, TOKENIZER_VERSION, TokenizerOptions, tokenize_packed
from loopynet.data.vectors import fingerprint
from loopynet.io.atomic import atomic_file

CACHE_FORMAT = 3  # 3: the skipped hidden entries are stored too
CHUNK_TOKENS = 1 << 22  # tokens gathered at once by `gather` (16 MB of int32)


@dataclass
class TokenizedCorpus:
    """N documents as token-type ids: document i is `types[flat[offsets[j]:offsets[j+1]]]`, j = index[i].

    types: distinct token strings; flat: (tokens,) int32 of the stored documents (possibly a read-only
    memory map); offsets: (M+1,) int64 of the stored documents; labels: (N,) int64; paths: N names;
    index: (N,) int64 stored document of each document (None: 0..M-1). `subset` selects by index, so it
    never copies token ids.
    hidden: the hidden entries skipped when reading (`Corpus.hidden`).
    """

    types: list[str]
    flat: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    paths: list[str]
    index: np.ndarray | None = None
    hidden: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.index is None:
            self.index = np.arange(len(self.offsets) - 1, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        """(N,) int64 tokens per document."""
        return self.offsets[self.index + 1] - self.offsets[self.index]

    def tokens(self, i: int) -> list[str]:
        j = self.index[i]
        return [self.types[t] for t in self.flat[self.offsets[j] : self.offsets[j + 1]]]

    def subset(self, index: np.ndarray) -> "TokenizedCorpus":
        """Documents `index` (in that order); the type table and the token ids are shared."""
        index = np.asarray(index, dtype=np.int64)
        return TokenizedCorpus(self.types, self.flat, self.offsets, self.labels[index], self.class_names,
                               [self.paths[i] for i in index], self.index[index], self.hidden)

    def type_counts(self) -> np.ndarray:
        """(types,) int64 occurrences of each type in these documents."""
        counts = np.zeros(len(self.types), dtype=np.int64)
        for _, tokens in gather(self.flat, self.offsets, np.sort(self.index)):  # stored order: see `gather`
            counts += np.bincount(tokens, minlength=len(self.types))
        return counts


def gather(flat: np.ndarray, offsets: np.ndarray, index: np.ndarray,
           chunk_tokens: int = CHUNK_TOKENS) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (lengths (n,), tokens (sum of lengths,)) for consecutive runs of documents `index`, each run
    about `chunk_tokens` tokens (at least one document): stored document j is flat[offsets[j]:offsets[j+1]].
    The runs are copies; when `flat` is memory-mapped, its pages are released (`release_pages`) after each run
    is copied, so the process' resident memory holds about one run of the map, whatever the corpus' size -
    when `index` is in stored order (sorted). A shuffled index touches pages all over the map, and the kernel
    maps up to 64 KB of cached file around each page read (fault-around), so one run of a shuffled 400,000-
    document corpus maps most of its 446 MB: callers that do not need the order pass `np.sort(index)`."""
    starts, ends = offsets[index], offsets[index + 1]
    ends_cum = np.cumsum(ends - starts)
    begin = 0
    while begin < len(index):
        done = ends_cum[begin - 1] if begin else 0
        stop = max(begin + 1, int(np.searchsorted(ends_cum, done + chunk_tokens, side="right")))
        lengths = ends[begin:stop] - starts[begin:stop]
        first = np.cumsum(lengths) - lengths  # where each document starts in the gathered run
        positions = np.repeat(starts[begin:stop] - first, lengths) + np.arange(int(lengths.sum()))
        tokens = flat[positions]
        release_pages(flat)  # a pass over a memory-mapped corpus holds one run's pages at a time, not the corpus'
        yield lengths, tokens
        begin = stop


def release_pages(array: np.ndarray) -> None:
    """Hand the pages of a memory-mapped `array` that this process has read back to the OS (they stay in the
    page cache; the next read maps them again). No-op for an array that is not a memory map."""
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap):
        base.obj.madvise(mmap.MADV_DONTNEED)


def tokenize_corpus(corpus: Corpus, workers: int | None = None, options: TokenizerOptions = BOOK) -> TokenizedCorpus:
    """Treebank-tokenise every document of `corpus` (in parallel for large corpora)."""
    types, flat, lengths = tokenize_packed(corpus.texts, workers, options)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return TokenizedCorpus(types, flat, offsets, np.asarray(corpus.labels, dtype=np.int64),
                           list(corpus.class_names), list(corpus.paths), hidden=list(corpus.hidden))


def data_fingerprint(data: Path) -> str:
    """sha256 of an archive's bytes, or of a folder's listing (relative paths, sizes, mtimes)."""
    if is_archive(data) or data.is_file():
        return fingerprint(data)["sha256"]
    digest = hashlib.sha256()
    for dirpath, dirs, names in sorted(os.walk(data)):
        dirs.sort()
        for name in sorted(names):
            st = os.stat(os.path.join(dirpath, name))
            digest.update(f"{os.path.relpath(os.path.join(dirpath, name), data)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_key(data: Path, split: str, encoding_errors: str, options: TokenizerOptions) -> str:
    parts = {"format": CACHE_FORMAT, "data": data_fingerprint(data), "split": split, "tokenizer": TOKENIZER_NAME,
             "tokenizer_version": TOKENIZER_VERSION,
             "nltk": nltk.__version__, "encoding_errors": encoding_errors, "options": dataclasses.asdict(options)}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def load_tokenized(data: str | os.PathLike, split: str, encoding_errors: str = "strict",
                   cache_dir: Path | None = None, options: TokenizerOptions = BOOK) -> TokenizedCorpus:
    """Read and tokenise a split, through the cache when `cache_dir` is given.

    Raises:
        CorpusError: as `read_corpus`.
    """
    data = Path(data)
    if cache_dir is None:
        return tokenize_corpus(read_corpus(data, split, encoding_errors), options=options)
    if not data.exists():
        read_corpus(data, split, encoding_errors)  # raises the clear error
    path = cache_dir / f"corpus-{cache_key(data, split, encoding_errors, options)}.npz"
    if path.is_file():
        try:
            return _read_cache(path)
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a damaged cache entry is rebuilt
    tokenized = tokenize_corpus(read_corpus(data, split, encoding_errors), options=options)
    _write_cache(path, tokenized)
    return _read_cache(path)  # the token ids memory-mapped: the in-memory copy is freed


def _flat_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".npz") + ".flat.npy")


def _write_cache(path: Path, tc: TokenizedCorpus) -> None:
    """The token ids first, then the .npz that marks the entry complete (both atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(_flat_path(path)) as f:
        np.save(f, np.ascontiguousarray(tc.flat, dtype=np.int32))
    meta = json.dumps({"types": tc.types, "class_names": tc.class_names, "paths": tc.paths, "hidden": tc.hidden})
    with atomic_file(path) as f:
        np.savez(f, offsets=tc.offsets, labels=tc.labels, meta=np.frombuffer(meta.encode(), np.uint8))


def _read_cache(path: Path) -> TokenizedCorpus:
    """Raises OSError, ValueError or KeyError for a damaged or incomplete entry."""
    with np.load(path) as z:
        meta = json.loads(z["meta"].tobytes().decode())
        offsets, labels = z["offsets"], z["labels"]
    flat = map_int32(_flat_path(path))
    if len(offsets) != len(labels) + 1 or offsets[-1] != len(flat):
        raise ValueError(f"{path}: token ids and offsets disagree")
    return TokenizedCorpus(meta["types"], flat, offsets, labels, meta["class_names"], meta["paths"],
                           hidden=meta["hidden"])


def map_int32(path: Path) -> np.ndarray:
    """A read-only memory map of the 1-d int32 .npy file `path` (its pages are read when used).

    Raises:
        ValueError: not a 1-d int32 C-order .npy file. OSError: unreadable.
    """
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        if len(shape) != 1 or fortran or dtype != np.dtype(np.int32):
            raise ValueError(f"{path}: expected a 1-d int32 array, found {dtype} of shape {shape}")
        if shape[0] == 0:
            return np.zeros(0, dtype=np.int32)
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)  # the map outlives the file object
        return np.frombuffer(mapped, dtype=np.int32, count=shape[0], offset=f.tell())
