"""The main job on a slice of the real IMDB archive and the real 300-d vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from loopynet import Classifier, DataConfig, ModelConfig, TrainConfig
from loopynet.cli import main

# The book's model on 2,000 reviews (1,600 train / 400 validation), first 100 tokens, default data pipeline
# (cleaned Treebank tokens; vectors all-but-the-top, unit norm, SIF-weighted), 4 epochs: ~15 s.
SLICE = {"data_config": DataConfig(limit=2000), "model_config": ModelConfig(units=50, maxlen=100),
         "train_config": TrainConfig(epochs=4, seed=0)}


@pytest.fixture(scope="module")
def slice_model(real_data, tmp_path_factory):
    clf = Classifier.train(real_data["imdb"], real_data["vectors"], progress=False, log=lambda s: None, **SLICE)
    return clf, clf.save(tmp_path_factory.mktemp("imdb") / "slice")


def test_real_slice_report_counts(slice_model):
    report = slice_model[0].data_report
    assert report["train"]["documents"] == 1600 and report["validation"]["documents"] == 400
    assert 0.015 < report["train"]["oov_rate"] < 0.04  # shared README: 97.5% coverage with the clean-ups (raw: 94.5%)
    assert sum(report["train"]["class_counts"].values()) == 1600 and len(report["train"]["class_counts"]) == 2


def test_real_slice_vectors_are_sif_weighted_by_frequency(slice_model):
    """Default pipeline: unit-norm abtt rows times a/(a + p(w)) (Arora et al. 2017), most frequent word first,
    so row norms rise along the vocabulary; 'the' (~5% of tokens) is ~1e-3 / 0.05 = 0.02 long, the rarest 1."""
    clf = slice_model[0]
    norms = clf.model.embeddings[1:].norm(dim=1).numpy()
    assert (clf.data_config.word_weights, clf.data_config.sif_a) == ("sif", 1e-3)
    assert (np.diff(norms) >= -1e-6).all() and abs(norms[-1] - 1) < 1e-6
    assert norms[clf.vocab.index["the"] - 1] < 0.03 and norms[clf.vocab.index["dismal"] - 1] > 0.5


def test_real_slice_beats_chance_on_the_test_split(slice_model, real_data):
    metrics = slice_model[0].evaluate(real_data["imdb"], "test", limit=2000)
    assert metrics["support"] == 2000 and sum(metrics["data_report"]["class_counts"].values()) == 2000
    assert metrics["accuracy"] > 0.55, metrics  # chance is 0.5 +- 0.011 (one s.d. for 2,000 reviews)


def test_cli_on_the_real_archive(slice_model, real_data, capsys):
    folder = slice_model[1]
    assert main(["evaluate", str(folder), "--data", str(real_data["imdb"]), "--limit", "200", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["support"] == 200
    assert main(["predict", str(folder), "--json", "A wonderful, moving film.", ""]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


@pytest.mark.slow
def test_full_book_run(real_data, tmp_path):
    """The chapter's run (20,000/5,000 reviews, 2 epochs, defaults, seed 0, 2 threads as the main job) is
    judged on val_accuracy and test accuracy >= 0.78 (the book: val_accuracy 0.7820). The sample_1
    criterion is retired (issue 18): on these vectors the Flatten head answers short texts near its
    padding prior, and Keras trained on the same data does the same (README, "sample_1 and short texts")."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        clf = Classifier.train(real_data["imdb"], real_data["vectors"], progress=False, log=lambda s: None)
        test = clf.evaluate(real_data["imdb"], split="test")
    finally:
        torch.set_num_threads(threads)
    assert clf.history[-1]["val_accuracy"] >= 0.78 and test["accuracy"] >= 0.78
