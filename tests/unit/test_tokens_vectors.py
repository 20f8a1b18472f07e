"""Tokenizer, vector files, vocabulary, OOV counting, pad/trunc, the tokenised-corpus cache."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from loopynet.data import tokenized as tokenized_module
from loopynet.data.batching import batches, pad_trunc
from loopynet.data.corpus import read_corpus
from loopynet.data.report import make_report
from loopynet.data.tokenize import tokenize, tokenize_packed
from loopynet.data.tokenized import load_tokenized, tokenize_corpus
from loopynet.data.vectors import VectorsError, load_vectors
from loopynet.data.vocab import (
    Vocabulary,
    all_but_the_top,
    build_vocabulary,
    encode,
    encode_texts,
    sif_weights,
    words_to_train,
)
from tests.conftest import write_word2vec


def test_treebank_tokens_are_the_books():
    assert tokenize('I can\'t wait. "Hi" <br />ok') == ["I", "ca", "n't", "wait.", "``", "Hi", "''", "<", "br", "/", ">", "ok"]


def test_parallel_tokenisation_equals_serial():
    texts = [f"doc {i} is {'good' if i % 2 else 'bad'}, isn't it?" for i in range(2500)]
    types, flat, lengths = tokenize_packed(texts, workers=2)
    serial = [tokenize(t) for t in texts]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    assert [[types[t] for t in flat[offsets[i]:offsets[i + 1]]] for i in range(len(texts))] == serial


@pytest.fixture
def vectors_file(tmp_path):
    words = ["good", "bad", "movie", "the"]
    return write_word2vec(tmp_path / "v.bin", words, np.arange(12, dtype=np.float32).reshape(4, 3))


@pytest.mark.parametrize("name, binary, header", [("v.bin", True, True), ("v.txt", False, True), ("glove.txt", False, False)])
def test_vector_formats_load_the_same_table(tmp_path, name, binary, header):
    words, table = ["good", "bad"], np.array([[1.0, 2.0], [3.0, -4.5]], dtype=np.float32)
    path = tmp_path / name
    if header:
        write_word2vec(path, words, table, binary=binary)
    else:
        path.write_text("good 1.0 2.0\nbad 3.0 -4.5\n", encoding="utf-8")
    wv = load_vectors(path)
    assert wv.index == {"good": 0, "bad": 1} and np.array_equal(wv.vectors, table)
    assert wv.fingerprint["bytes"] == path.stat().st_size and len(wv.fingerprint["sha256"]) == 64


def test_gzipped_binary_vectors(tmp_path, vectors_file):
    gz = tmp_path / "v.bin.gz"
    gz.write_bytes(gzip.compress(vectors_file.read_bytes()))
    assert np.array_equal(load_vectors(gz).vectors, load_vectors(vectors_file).vectors)


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[:-10]), r"header.s 4 should start \(3 float32 values expected\): 3 vectors read"),
    (lambda p: p.write_bytes(b""), "file is empty"),
    (lambda p: p.unlink(), "no such file"),
])
def test_bad_vector_files_give_clear_errors(vectors_file, damage, message):
    damage(vectors_file)
    with pytest.raises(VectorsError, match=message):
        load_vectors(vectors_file)


def tokenized(docs_text: list[str], labels: list[int]):
    from loopynet.data.corpus import Corpus

    return tokenize_corpus(Corpus(docs_text, labels, ["neg", "pos"], [f"{i}.txt" for i in range(len(labels))]))


def test_vocabulary_holds_corpus_words_with_vectors_most_frequent_first(vectors_file):
    corpus = tokenized(["the movie the zzz", "bad bad bad"], [0, 1])
    vocab, matrix = build_vocabulary(corpus, load_vectors(vectors_file))
    assert vocab.words == ["<pad>", "bad", "the", "movie"]  # 'good' is unused, 'zzz' has no vector
    assert np.array_equal(matrix[0], np.zeros(3)) and np.array_equal(matrix[1], [3, 4, 5])


def test_oov_tokens_are_dropped_and_counted_like_the_book(vectors_file):
    corpus = tokenized(["the zzz movie qqq", "", "zzz"], [0, 1, 1])
    vocab, _ = build_vocabulary(corpus, load_vectors(vectors_file))
    docs, oov = encode(corpus, vocab)
    assert (oov.tokens, oov.oov_tokens) == (5, 3)
    assert list(docs.lengths) == [2, 0, 0]
    report = make_report("train", docs, oov, maxlen=1, class_names=["neg", "pos"], corpus=corpus)
    assert (report.oov_rate, report.empty_documents, report.truncated_documents) == (0.6, 2, 1)
    assert report.empty_reasons == {"no tokens": 1, "no token with a vector": 1}
    assert report.empty_files == ["1.txt", "2.txt"]
    assert "2 empty (1 no tokens, 1 no token with a vector: 1.txt, 2.txt)" in report.line()
    assert report.class_counts == {"neg": 1, "pos": 2}


def test_training_words_without_a_vector_get_zero_rows_of_their_own(vectors_file):
    corpus = tokenized(["the zzz movie qqq zzz", "zzz qqq www bad", "www www www www"], [0, 1, 1])
    vectors = load_vectors(vectors_file)
    training_part = corpus.subset(np.array([0, 1]))  # www is frequent only in the third (validation) review
    assert words_to_train(training_part, vectors, 0) == []
    assert words_to_train(training_part, vectors, 1) == ["zzz", "qqq", "www"]
    extra = words_to_train(training_part, vectors, 2)
    assert extra == ["zzz", "qqq"]
    vocab, matrix = build_vocabulary(corpus, vectors, vector_norm="unit", extra_words=extra)
    assert vocab.words == ["<pad>", "the", "movie", "bad", "zzz", "qqq"]
    assert np.allclose(np.linalg.norm(matrix[1:4], axis=1), 1, atol=1e-3) and not matrix[4:].any()
    docs, oov = encode(corpus, vocab)
    assert [list(docs.first_ids(i, 9)) for i in range(3)] == [[1, 4, 2, 5, 4], [4, 5, 3], []]
    assert (oov.tokens, oov.oov_tokens) == (13, 5)  # www of the third review: not frequent in training


def test_unk_policy_maps_oov_to_one_id(vectors_file):
    corpus = tokenized(["the zzz movie"], [0])
    vocab, matrix = build_vocabulary(corpus, load_vectors(vectors_file), oov="unk")
    docs, oov = encode(corpus, vocab)
    assert vocab.words[:2] == ["<pad>", "<unk>"] and list(docs.first_ids(0, 9)) == [vocab.index["the"], 1, vocab.index["movie"]]
    assert oov.oov_tokens == 1 and not matrix[1].any()
    assert list(encode_texts([["zzz", "the"]], vocab).first_ids(0, 9)) == [1, vocab.index["the"]]


def ragged(*docs):
    vocab = Vocabulary(["<pad>"] + [str(i) for i in range(1, 10)])
    return encode_texts([[str(i) for i in d] for d in docs], vocab)


def test_pad_trunc_keeps_the_first_maxlen_and_pads_at_the_end():
    docs = ragged([1, 2], [1, 2, 3, 4, 5, 6], [], [7, 8, 9, 1])
    out = pad_trunc(docs, np.arange(4), maxlen=4)
    assert out.tolist() == [[1, 2, 0, 0], [1, 2, 3, 4], [0, 0, 0, 0], [7, 8, 9, 1]]  # shorter, longer, empty, exact
    assert out.dtype == np.int64


def test_batches_cover_every_document_once_with_a_smaller_last_batch():
    docs = ragged(*[[i % 9 + 1] for i in range(10)])
    docs.labels = np.arange(10)
    got = list(batches(docs, batch_size=4, maxlen=2, order=np.arange(10)[::-1]))
    assert [len(labels) for _, labels in got] == [4, 4, 2]
    assert np.concatenate([labels for _, labels in got]).tolist() == list(range(9, -1, -1))


def test_tokenised_corpus_cache_is_used_on_the_second_load(tiny_imdb, tmp_path, monkeypatch):
    first = load_tokenized(tiny_imdb, "train", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("corpus-*.npz"))) == 1
    monkeypatch.setattr(tokenized_module, "read_corpus", lambda *a, **k: pytest.fail("re-read despite the cache"))
    second = load_tokenized(tiny_imdb, "train", cache_dir=tmp_path)
    assert second.types == first.types and np.array_equal(second.flat, first.flat)
    assert [second.tokens(i) for i in range(3)] == [tokenize(t) for t in read_corpus(tiny_imdb).texts[:3]]


def test_a_changed_folder_misses_the_cache(tiny_imdb, tmp_path):
    load_tokenized(tiny_imdb, "test", cache_dir=tmp_path)
    extra = tiny_imdb / "test" / "pos" / "new.txt"
    extra.write_text("great", encoding="utf-8")
    try:
        assert len(load_tokenized(tiny_imdb, "test", cache_dir=tmp_path)) == 41
    finally:
        extra.unlink()


def test_all_but_the_top_equals_pca_removal_by_scikit_learn():
    """Mu & Viswanath 2018, Algorithm 1, against scikit-learn's PCA as the oracle."""
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    common = rng.normal(size=(3, 300)) * 8  # three dominating directions, as in real vector tables
    vectors = (rng.normal(size=(2000, 300)) + rng.normal(size=(2000, 3)) @ common + 4).astype(np.float32)
    out = all_but_the_top(vectors)  # 300 // 100 = 3 directions
    pca = PCA(n_components=3).fit(vectors.astype(np.float64))
    centered = vectors - vectors.mean(axis=0)
    expected = centered - (centered @ pca.components_.T) @ pca.components_
    assert out.dtype == np.float32 and np.allclose(out, expected, atol=1e-3)
    assert np.abs(out.mean(axis=0)).max() < 1e-4 and np.abs(out @ pca.components_.T).max() < 1e-3
    assert np.allclose(all_but_the_top(vectors[:, :50]), vectors[:, :50] - vectors[:, :50].mean(axis=0), atol=1e-5)


def test_abtt_vocabulary_rows_have_unit_norm_and_padding_stays_zero(vectors_file):
    corpus = tokenized(["the movie the zzz", "bad good"], [0, 1])
    for norm in ("unit", "abtt"):
        vocab, matrix = build_vocabulary(corpus, load_vectors(vectors_file), oov="unk", vector_norm=norm)
        assert vocab.words[:2] == ["<pad>", "<unk>"] and not matrix[0].any() and not matrix[1].any()
        assert np.allclose(np.linalg.norm(matrix[2:], axis=1), 1.0)
    with pytest.raises(ValueError, match="vector_norm must be one of"):
        build_vocabulary(corpus, load_vectors(vectors_file), vector_norm="l1")


def test_sif_weights_are_a_over_a_plus_frequency_scaled_to_the_rarest_word():
    """Arora et al. 2017, eq. 1: a / (a + p(w)); p = counts / total tokens. Worked by hand for a = 1e-3."""
    weights = sif_weights(np.array([1, 10, 1000]), total_tokens=10_000, a=1e-3)  # p = 1e-4, 1e-3, 0.1
    raw = np.array([1e-3 / 1.1e-3, 0.5, 1e-3 / 0.101])  # 0.90909, 0.5, 0.0099
    assert np.allclose(weights, raw / raw[0], rtol=1e-12) and weights[0] == 1.0
    assert np.allclose(weights, [1.0, 0.55, 0.0108911], rtol=1e-5)
    assert len(sif_weights(np.zeros(0, int), 0)) == 0
    with pytest.raises(ValueError, match="sif_a must be > 0"):
        sif_weights(np.array([1]), 10, a=0.0)


def test_sif_vocabulary_shortens_frequent_words_and_keeps_direction(vectors_file):
    # 8 tokens; the OOV ones (zzz, ",") count in the total. p: the 3/8, movie 1/8, bad 1/8
    corpus = tokenized(["the movie the zzz", "bad the , ,"], [0, 1])
    plain_vocab, plain = build_vocabulary(corpus, load_vectors(vectors_file), vector_norm="unit")
    vocab, matrix = build_vocabulary(corpus, load_vectors(vectors_file), vector_norm="unit", word_weights="sif", sif_a=0.5)
    assert vocab.words == plain_vocab.words == ["<pad>", "the", "movie", "bad"] and not matrix[0].any()
    expected = np.array([0.5 / (0.5 + 3 / 8), 0.5 / (0.5 + 1 / 8), 0.5 / (0.5 + 1 / 8)])
    assert np.allclose(np.linalg.norm(matrix[1:], axis=1), expected / expected.max(), atol=1e-6)
    assert np.allclose(matrix[1:] / np.linalg.norm(matrix[1:], axis=1, keepdims=True), plain[1:], atol=1e-6)
    with pytest.raises(ValueError, match="word_weights must be one of"):
        build_vocabulary(corpus, load_vectors(vectors_file), word_weights="tfidf")
