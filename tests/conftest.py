"""Shared fixtures: where the real data lives, a private $LOOPYNET_HOME, tiny corpora and vectors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest_plugins = ["tests.browser"]  # the `chromium_driver` fixture

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LOOPYNET_SHARED_DATA", REPO.parent / "shared" / "data"))
IMDB = SHARED_DATA / "aclImdb_v1_labeled.tar.gz"
VECTORS_300D = SHARED_DATA / "en_vectors_300d.bin.gz"
GLOVE_50D = SHARED_DATA / "glove_6B_50d_imdb.bin.gz"
GLOVE_50D_CONLL = SHARED_DATA / "glove_6B_50d_conll.bin.gz"  # the tagger's recipe (docs/tagger.md)


def pytest_collection_modifyitems(config, items):
    """Mark each test by its folder: tests/unit -> `unit` (tiny fixtures only), tests/integration ->
    `integration` (slices of the real data); pyproject's addopts selects both, and not `slow`."""
    for item in items:
        folder = Path(item.fspath).resolve().relative_to(REPO / "tests").parts[0]
        if folder in ("unit", "integration"):
            item.add_marker(getattr(pytest.mark, folder))


@pytest.fixture(scope="session", autouse=True)
def loopynet_home(tmp_path_factory):
    """Keep caches (tokenised corpora, kernels) out of the user's home, shared by the whole session."""
    home = tmp_path_factory.mktemp("loopynet_home")
    old = os.environ.get("LOOPYNET_HOME")
    os.environ["LOOPYNET_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("LOOPYNET_HOME", None)
    else:
        os.environ["LOOPYNET_HOME"] = old


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread: on a busy 2-core machine two threads are several times slower for tiny nets."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def real_data():
    """The shared IMDB archive and vectors; a missing file fails the test (never a silent skip)."""
    for path in (IMDB, VECTORS_300D, GLOVE_50D):
        assert path.is_file(), f"shared data file {path} is missing (set LOOPYNET_SHARED_DATA to its folder)"
    return {"imdb": IMDB, "vectors": VECTORS_300D, "glove": GLOVE_50D}


POSITIVE_WORDS = ["great", "wonderful", "loved", "superb", "brilliant"]
NEGATIVE_WORDS = ["awful", "boring", "hated", "dreadful", "terrible"]
NEUTRAL_WORDS = ["the", "movie", "film", "plot", "actor", "was", "and", "a"]


def write_word2vec(path: Path, words: list[str], vectors: np.ndarray, binary: bool = True) -> Path:
    """Write a word2vec file (binary or text) with gensim."""
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vectors.shape[1])
    kv.add_vectors(words, vectors.astype(np.float32))
    kv.save_word2vec_format(str(path), binary=binary)
    return path


@pytest.fixture(scope="session")
def tiny_vectors(tmp_path_factory) -> Path:
    """8-d word2vec binary vectors for the tiny corpus' words ('unknownword' has none).

    Like real vectors, sentiment words lie on opposite sides of one direction (axis 0).
    """
    words = POSITIVE_WORDS + NEGATIVE_WORDS + NEUTRAL_WORDS + ["."]
    vectors = np.random.default_rng(0).normal(0, 0.3, (len(words), 8))
    vectors[: len(POSITIVE_WORDS), 0] += 1.0
    vectors[len(POSITIVE_WORDS) : len(POSITIVE_WORDS) + len(NEGATIVE_WORDS), 0] -= 1.0
    return write_word2vec(tmp_path_factory.mktemp("vec") / "tiny.bin", words, vectors)


def make_review(rng, positive: bool) -> str:
    sentiment = POSITIVE_WORDS if positive else NEGATIVE_WORDS
    words = list(rng.choice(NEUTRAL_WORDS, 6)) + list(rng.choice(sentiment, 3)) + ["unknownword"]
    rng.shuffle(words)
    return " ".join(words) + " ."


def write_split(root: Path, n_per_class: int, seed: int, classes=("neg", "pos")) -> Path:
    """root/{classes}/*.txt with synthetic reviews whose sentiment words give the label away."""
    rng = np.random.default_rng(seed)
    for label, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            (folder / f"{i}_{7 if label else 2}.txt").write_text(make_review(rng, bool(label)), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def tiny_imdb(tmp_path_factory) -> Path:
    """An aclImdb-shaped root: train (60 per class) and test (20 per class), plus an ignored unsup/."""
    root = tmp_path_factory.mktemp("data") / "aclImdb"
    write_split(root / "train", 60, seed=1)
    write_split(root / "test", 20, seed=2)
    (root / "train" / "unsup").mkdir()
    (root / "train" / "unsup" / "0_0.txt").write_text("unlabelled", encoding="utf-8")
    return root


CLI_TRAIN = ["--maxlen", "12", "--units", "6", "--epochs", "3", "--batch-size", "8", "--lr", "5e-3", "--quiet"]
"""The `loopynet train` options of `cli_model_dir`'s tiny classifier."""


@pytest.fixture(scope="session")
def cli_model_dir(tiny_imdb, tiny_vectors, tmp_path_factory) -> Path:
    """A classifier folder written by `loopynet train` (CLI_TRAIN) on the tiny corpus; tests only read it."""
    from loopynet.cli import main

    out = tmp_path_factory.mktemp("cli") / "model"
    assert main(["train", "--data", str(tiny_imdb), "--vectors", str(tiny_vectors), "--out", str(out), *CLI_TRAIN]) == 0
    return out
