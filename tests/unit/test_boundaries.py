"""Boundaries a mutation run found unpinned (issue 11): the decision at p == threshold, a document of
exactly maxlen tokens, which documents form the validation part, and the optimizer's default constants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from loopynet import Classifier, DataConfig, ModelConfig, TrainConfig
from loopynet.data.batching import pad_trunc
from loopynet.data.report import make_report
from loopynet.data.tokenized import TokenizedCorpus
from loopynet.data.vocab import EncodedDocs, OOVCount
from loopynet.models.classifier import BookClassifier
from loopynet.tasks.classification.metrics import binary_metrics
from loopynet.tasks.classification.task import BinaryTask
from loopynet.train import loop
from loopynet.train.loop import fit, make_optimizer


def test_binary_metrics_count_p_equal_to_the_threshold_as_positive():
    metrics = binary_metrics(np.array([0.5, 0.5, 0.25]), np.array([1, 0, 0]), threshold=0.5)
    assert metrics["confusion_matrix"] == [[1, 1], [0, 1]]
    assert binary_metrics(np.array([0.25]), np.array([1]), threshold=0.25)["confusion_matrix"] == [[0, 0], [0, 1]]


def test_evaluate_and_predict_agree_at_p_equal_to_the_threshold(tiny_imdb, tiny_vectors, tmp_path, one_thread):
    clf = Classifier.train(tiny_imdb, tiny_vectors, DataConfig(), ModelConfig(units=3, maxlen=12),
                           TrainConfig(epochs=1, batch_size=16), progress=False, log=lambda s: None)
    text = "the movie was great and the plot wonderful ."
    p = float(clf.predict_proba([text])[0])
    assert clf.predict([text], threshold=p)[0]["label"] == "pos"
    assert clf.predict([text], threshold=np.nextafter(p, 1))[0]["label"] == "neg"
    for name, file in (("neg", "0_2.txt"), ("pos", "0_7.txt")):  # the same text once in each class
        (tmp_path / "test" / name).mkdir(parents=True)
        (tmp_path / "test" / name / file).write_text(text)
    assert clf.evaluate(tmp_path, threshold=p)["confusion_matrix"] == [[0, 1], [0, 1]]
    assert clf.evaluate(tmp_path, threshold=np.nextafter(p, 1))["confusion_matrix"] == [[1, 0], [1, 0]]


def test_a_document_of_exactly_maxlen_tokens_is_kept_whole_and_not_counted_as_truncated():
    maxlen = 5
    lengths = [maxlen - 1, maxlen, maxlen + 1]
    ids = np.arange(1, sum(lengths) + 1, dtype=np.int32)
    docs = EncodedDocs(ids, np.concatenate([[0], np.cumsum(lengths)]), np.array([0, 1, 0]))
    rows = pad_trunc(docs, np.arange(3), maxlen)
    assert rows.tolist() == [[1, 2, 3, 4, 0], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14]]
    corpus = TokenizedCorpus(["x"], np.zeros(sum(lengths), dtype=np.int32), docs.offsets, docs.labels, ["neg", "pos"],
                             ["a.txt", "b.txt", "c.txt"])
    report = make_report("train", docs, OOVCount(sum(lengths), 0), maxlen, ["neg", "pos"], corpus)
    assert report.truncated_documents == 1


def test_the_validation_part_is_the_last_val_split_of_the_seeded_shuffle(tmp_path, tiny_vectors):
    """Document k (in path order) holds k + 1 tokens, so a part's lengths name its documents."""
    from loopynet.data import prepare
    from loopynet.data.vectors import load_vectors

    for k in range(8):
        name = "neg" if k < 4 else "pos"
        (tmp_path / "train" / name).mkdir(parents=True, exist_ok=True)
        (tmp_path / "train" / name / f"{k}_{2 if k < 4 else 7}.txt").write_text(" ".join(["great"] * (k + 1)))
    data = prepare.prepare_training_data(tmp_path, load_vectors(tiny_vectors), DataConfig(val_split=0.25), 400, seed=0,
                                         log=lambda s: None)
    shuffled = np.random.default_rng(0).permutation(8)  # the seeded shuffle: numpy's PCG64 seeded with 0
    assert shuffled.tolist() == [2, 4, 3, 6, 5, 0, 1, 7]
    assert data.validation.lengths.tolist() == [1 + 1, 7 + 1]  # documents 1 and 7: the last 25% of the shuffle
    assert data.train.lengths.tolist() == [3, 5, 4, 7, 6, 1]
    assert data.validation.labels.tolist() == [0, 1] and data.train.labels.tolist() == [0, 1, 0, 1, 1, 0]


def book_model() -> BookClassifier:
    return BookClassifier(ModelConfig(units=3, maxlen=6, embedding_dims=4), torch.randn(10, 4))


def test_make_optimizer_with_the_train_config_defaults_is_keras_rmsprop():
    optimizer = make_optimizer(book_model(), TrainConfig())
    assert isinstance(optimizer, torch.optim.RMSprop)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["alpha"], group["eps"], group["momentum"], group["centered"]) == (1e-3, 0.9, 1e-7, 0, False)


def test_fit_trains_with_the_train_config_defaults(monkeypatch):
    made = []

    def spy(model, config):
        made.append(make_optimizer(model, config))
        return made[-1]

    monkeypatch.setattr(loop, "make_optimizer", spy)
    ids = np.arange(1, 9, dtype=np.int32) % 9
    docs = EncodedDocs(ids, np.array([0, 4, 8]), np.array([0, 1]))
    fit(book_model(), BinaryTask(6), TrainConfig(epochs=1), docs, progress=False)
    group = made[0].param_groups[0]
    assert isinstance(made[0], torch.optim.RMSprop) and (group["lr"], group["alpha"], group["eps"]) == (1e-3, 0.9, 1e-7)


@pytest.mark.parametrize("field, default", [("rho", 0.9), ("epsilon", 1e-7), ("lr", 1e-3), ("batch_size", 32),
                                            ("epochs", 2), ("optimizer", "rmsprop")])
def test_train_config_defaults_are_the_books(field, default):
    assert getattr(TrainConfig(), field) == default
