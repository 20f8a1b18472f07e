"""The memory-mapped token cache and streamed documents give exactly the batches of a plain in-memory
encoding (an oracle written from the token strings), through subsets, both OOV policies and page releases."""

from __future__ import annotations

import mmap
import os

import numpy as np
import pytest

from loopynet.data.tokenize import pack
from loopynet.data import vocab as vc
from loopynet.data.batching import batches, pad_trunc
from loopynet.data.tokenized import TokenizedCorpus, gather, load_tokenized, release_pages
from loopynet.data.vocab import Vocabulary, encode

TEXTS = ["the movie was great fun", "", "zzz qqq", "a dull dull movie , the end .", "great"] * 3
LABELS = [0, 1, 0, 1, 1] * 3


def _corpus() -> TokenizedCorpus:
    types, flat, lengths = pack([t.split() for t in TEXTS])
    return TokenizedCorpus(types, flat, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                           np.array(LABELS, dtype=np.int64), ["neg", "pos"], [f"{i}.txt" for i in range(len(TEXTS))])


def _oracle(texts: list[str], vocab: Vocabulary, maxlen: int) -> np.ndarray:
    """(N, maxlen) ids straight from the token strings: the book's pad_trunc after its OOV policy."""
    out = np.zeros((len(texts), maxlen), dtype=np.int64)
    for row, text in enumerate(texts):
        ids = [vocab.index.get(t, vocab.unk_id) for t in text.split()]
        ids = [i for i in ids if i >= 0][:maxlen]
        out[row, : len(ids)] = ids
    return out


@pytest.mark.parametrize("oov", ["drop", "unk"])
def test_streamed_batches_equal_the_oracle_through_subsets(oov, monkeypatch):
    monkeypatch.setattr(vc, "RELEASE_EVERY", 2)  # pages released between documents: values unchanged
    words = ["<pad>"] + (["<unk>"] if oov == "unk" else []) + ["the", "movie", "great", "dull", "."]
    vocab = Vocabulary(words, oov)
    order = np.random.default_rng(3).permutation(len(TEXTS))[:11]
    part = _corpus().subset(order).subset(np.arange(2, 11))  # a shuffled slice, then a split
    docs, count = encode(part, vocab)
    texts = [TEXTS[i] for i in order[2:11]]
    expected = _oracle(texts, vocab, maxlen=3)
    got = np.concatenate([ids for ids, _ in batches(docs, 4, 3)])
    assert np.array_equal(got, expected)
    assert np.array_equal(docs.labels, np.array(LABELS)[order[2:11]])
    full = _oracle(texts, vocab, maxlen=20)
    assert list(docs.lengths) == [int((row > 0).sum()) for row in full]
    tokens = [t for text in texts for t in text.split()]
    assert count.tokens == len(tokens)
    assert count.oov_tokens == sum(t not in vocab.index for t in tokens)
    trimmed = pad_trunc(docs, np.array([1, 4]), maxlen=20, trim=True)  # longest of the two, not maxlen
    assert np.array_equal(trimmed, full[[1, 4], : trimmed.shape[1]]) and trimmed.shape[1] == max(docs.lengths[[1, 4]].max(), 1)


def test_type_counts_count_only_the_subsets_documents():
    corpus = _corpus()
    part = corpus.subset(np.array([3, 0, 3]))
    expected = {}
    for i in (3, 0, 3):
        for t in TEXTS[i].split():
            expected[t] = expected.get(t, 0) + 1
    assert {corpus.types[i]: int(c) for i, c in enumerate(part.type_counts()) if c} == expected


def test_gather_cuts_runs_at_document_borders():
    corpus = _corpus()
    index = np.array([4, 0, 1, 3, 2])
    runs = list(gather(corpus.flat, corpus.offsets, index, chunk_tokens=4))
    assert len(runs) > 1 and all(len(lengths) >= 1 for lengths, _ in runs)
    assert np.array_equal(np.concatenate([l for l, _ in runs]), corpus.lengths[index])
    assert [corpus.types[t] for _, tokens in runs for t in tokens] == [w for i in index for w in TEXTS[i].split()]


def test_cache_hit_is_a_read_only_memory_map_with_the_same_tokens(tiny_imdb, tmp_path):
    first = load_tokenized(tiny_imdb, "train", cache_dir=tmp_path)
    second = load_tokenized(tiny_imdb, "train", cache_dir=tmp_path)
    base = second.flat.base
    assert isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap) and not second.flat.flags.writeable
    assert np.array_equal(first.flat, second.flat) and second.types == first.types
    release_pages(second.flat)
    assert [second.tokens(i) for i in range(len(second))] == [first.tokens(i) for i in range(len(first))]


def test_an_incomplete_cache_entry_is_rebuilt(tiny_imdb, tmp_path):
    corpus = load_tokenized(tiny_imdb, "train", cache_dir=tmp_path)
    flat_file, = tmp_path.glob("corpus-*.flat.npy")
    expected = np.array(corpus.flat)
    np.save(tmp_path / "short.npy", expected[:-1])
    os.replace(tmp_path / "short.npy", flat_file)  # ids cut short (a new file: the old map stays valid)
    again = load_tokenized(tiny_imdb, "train", cache_dir=tmp_path)
    assert np.array_equal(again.flat, expected)


def _mapped_rss_bytes(path) -> int:
    """Resident bytes of this process' mappings of `path` (Linux /proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):  # a mapping's header line
                inside = line.rstrip().endswith(str(path))
            elif inside and first == "Rss:":
                total += int(line.split()[1]) * 1024
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux /proc/self/smaps")
def test_passes_over_a_mapped_corpus_hold_one_run_of_pages_not_the_corpus(tmp_path, monkeypatch):
    """What the map holds resident right before each release (the peak of a run), for a plain pass and for
    the type counts of a shuffled subset (read in stored order: a shuffled read maps pages all over the file)."""
    from loopynet.data import tokenized
    from loopynet.data.tokenized import CHUNK_TOKENS, map_int32

    tokens, width = 8 * CHUNK_TOKENS, 1024  # 128 MB of int32 ids in 32,768 documents of 1,024 tokens
    path = tmp_path / "ids.npy"
    np.save(path, (np.arange(tokens, dtype=np.int32) % 1000))
    flat = map_int32(path)
    offsets = np.arange(0, tokens + 1, width, dtype=np.int64)
    resident = []
    release = tokenized.release_pages
    monkeypatch.setattr(tokenized, "release_pages", lambda a: (resident.append(_mapped_rss_bytes(path)), release(a)))
    runs = list(gather(flat, offsets, np.arange(len(offsets) - 1), chunk_tokens=CHUNK_TOKENS // 4))
    assert len(runs) == 32 and sum(len(t) for _, t in runs) == tokens
    assert max(resident) <= 2 * 4 * CHUNK_TOKENS // 4  # one 4 MB run's pages (plus readahead), not 128 MB
    resident.clear()
    shuffled = TokenizedCorpus([str(i) for i in range(1000)], flat, offsets, np.zeros(len(offsets) - 1, dtype=np.int64),
                               ["a"], [""] * (len(offsets) - 1)).subset(np.random.default_rng(0).permutation(len(offsets) - 1))
    assert np.array_equal(shuffled.type_counts(), np.bincount(np.arange(tokens) % 1000))
    assert len(resident) == 8 and max(resident) <= 1.25 * 4 * CHUNK_TOKENS  # one 16 MB run, not the whole map
