"""Train -> save -> load -> evaluate -> predict on tiny data; model folders and their errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from loopynet import Classifier, DataConfig, ModelConfig, TrainConfig
from loopynet.config import BOOK_DATA
from loopynet.io import artifact
from loopynet.io.artifact import ArtifactError
from loopynet.train.loop import TrainingError
from tests.conftest import write_word2vec

SMALL = dict(data_config=DataConfig(), model_config=ModelConfig(units=6, maxlen=12),
             train_config=TrainConfig(epochs=3, batch_size=8, lr=5e-3))


@pytest.fixture(scope="module")
def trained(tiny_imdb, tiny_vectors):
    return Classifier.train(tiny_imdb, tiny_vectors, progress=False, log=lambda s: None, **SMALL)


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    return trained.save(tmp_path_factory.mktemp("runs") / "tiny")


def test_training_learns_the_tiny_task_and_records_keras_history(trained):
    assert [h["epoch"] for h in trained.history] == [1, 2, 3]
    assert set(trained.history[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "samples_per_second", "val_seconds"}
    assert trained.history[-1]["val_accuracy"] >= 0.9
    assert trained.data_report["train"]["documents"] == 96 and trained.data_report["validation"]["documents"] == 24


def test_same_seed_gives_identical_runs(tiny_imdb, tiny_vectors, trained):
    again = Classifier.train(tiny_imdb, tiny_vectors, progress=False, log=lambda s: None, **SMALL)
    timing = ("seconds", "samples_per_second", "val_seconds")
    assert [{k: v for k, v in h.items() if k not in timing} for h in again.history] == [
        {k: v for k, v in h.items() if k not in timing} for h in trained.history]
    assert all(torch.equal(a, b) for a, b in zip(again.model.state_dict().values(), trained.model.state_dict().values()))


def test_model_folder_contents(saved, tiny_vectors):
    config = json.loads((saved / "config.json").read_text())
    assert config["format_version"] == artifact.FORMAT_VERSION and config["loopynet_version"]
    assert config["model"]["units"] == 6 and config["train"]["batch_size"] == 8 and config["model"]["maxlen"] == 12
    assert "maxlen" not in config["data"]  # one home: ModelConfig
    assert config["vectors"]["name"] == tiny_vectors.name and len(config["vectors"]["sha256"]) == 64
    assert json.loads((saved / "vocab.json").read_text())[0] == "<pad>"
    assert len(json.loads((saved / "history.json").read_text())) == 3
    assert "oov_rate" in json.loads((saved / "data_report.json").read_text())["train"]


def test_save_load_gives_identical_predictions(trained, saved):
    texts = ["great wonderful film", "awful boring plot", "", "unknownword only"]
    loaded = Classifier.load(saved)
    assert np.array_equal(loaded.predict_proba(texts), trained.predict_proba(texts))
    result = loaded.predict(texts)
    assert [r["label"] for r in result[:2]] == ["pos", "neg"] and result[2]["text"] == ""


def test_threshold_decides_the_label_not_argmax(saved):
    clf = Classifier.load(saved)
    p = clf.predict_proba(["great film"])[0]
    assert clf.predict(["great film"], threshold=p)[0]["label"] == "pos"
    assert clf.predict(["great film"], threshold=min(1.0, p + 1e-6))[0]["label"] == "neg"


def test_evaluate_reports_metrics_on_the_test_split(saved, tiny_imdb):
    metrics = Classifier.load(saved).evaluate(tiny_imdb)
    assert metrics["support"] == 40 and metrics["accuracy"] >= 0.9
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    assert tn + fp == fn + tp == 20 and metrics["accuracy"] == (tn + tp) / 40
    assert metrics["data_report"]["oov_tokens"] == 40  # one 'unknownword' per review


def test_evaluate_limit_is_a_mixed_slice(saved, tiny_imdb):
    assert Classifier.load(saved).evaluate(tiny_imdb, limit=10)["data_report"]["class_counts"].keys() == {"neg", "pos"}


def test_failed_save_leaves_the_previous_folder_intact(trained, tmp_path, monkeypatch):
    out = trained.save(tmp_path / "m")
    before = (out / "model.safetensors").read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(artifact, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        trained.save(out)
    assert (out / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp folder left


def test_other_format_version_is_refused_with_what_differs(saved, tmp_path):
    import shutil

    copy = shutil.copytree(saved, tmp_path / "old")
    config = json.loads((copy / "config.json").read_text())
    config["format_version"] = 99
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match="version 99; this loopynet reads 'loopynet-model' version 1"):
        Classifier.load(copy)


def test_a_folder_from_before_the_pipeline_options_loads_with_the_books_pipeline(saved, tmp_path):
    """Folders written before strip_html/split_periods/map_quotes/vector_norm existed were trained with
    the book's pipeline: a missing key must not pick up today's (different) default."""
    import shutil

    copy = shutil.copytree(saved, tmp_path / "older")
    config = json.loads((copy / "config.json").read_text())
    for key in BOOK_DATA:
        config["data"].pop(key)
    (copy / "config.json").write_text(json.dumps(config))
    loaded = Classifier.load(copy)
    assert {k: getattr(loaded.data_config, k) for k in BOOK_DATA} == BOOK_DATA
    assert Classifier.load(saved).data_config.strip_html is True  # a current folder keeps its own values


def test_a_folder_from_before_word_weights_loads_without_them(saved, tmp_path):
    """Stop-8 folders have the clean-ups and vector_norm but no word_weights: they were trained without."""
    import shutil

    copy = shutil.copytree(saved, tmp_path / "stop8")
    config = json.loads((copy / "config.json").read_text())
    assert config["data"].pop("word_weights") == "sif" and config["data"].pop("sif_a") == 1e-3
    (copy / "config.json").write_text(json.dumps(config))
    loaded = Classifier.load(copy)
    assert loaded.data_config.word_weights == "none" and loaded.data_config.vector_norm == "abtt"


def test_shape_mismatch_is_refused_naming_the_tensor(saved, tmp_path):
    import shutil

    copy = shutil.copytree(saved, tmp_path / "bad")
    config = json.loads((copy / "config.json").read_text())
    config["model"]["units"] = 7
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match=r"rnn.recurrent_kernel: file has \(6, 6\), config implies \(7, 7\)"):
        Classifier.load(copy)


@pytest.mark.parametrize("remove", ["model.safetensors", "vocab.json"])
def test_incomplete_folder_is_refused(saved, tmp_path, remove):
    import shutil

    copy = shutil.copytree(saved, tmp_path / "partial")
    (copy / remove).unlink()
    with pytest.raises(ArtifactError, match=f"incomplete: missing \\['{remove}'\\]"):
        Classifier.load(copy)


def test_nan_loss_stops_training_and_saves_nothing(tiny_imdb, tmp_path):
    words = ["great", "awful", "the", "movie"]
    vectors = np.full((4, 8), 3e38, dtype=np.float32)  # finite (NaN values are refused on load), sums overflow
    vectors[:, ::2] *= -1
    path = write_word2vec(tmp_path / "huge.bin", words, vectors)
    with pytest.raises(TrainingError, match="loss became nan at epoch 1, batch 1"):
        Classifier.train(tiny_imdb, path, progress=False, log=lambda s: None, **SMALL)


def test_embedding_dims_must_match_the_vectors(tiny_imdb, tiny_vectors):
    with pytest.raises(ValueError, match="--embedding-dims 50 but .* has 8-dimensional vectors"):
        Classifier.train(tiny_imdb, tiny_vectors, model_config=ModelConfig(embedding_dims=50), progress=False)


def test_training_words_without_a_vector_get_trained_rows(tiny_imdb, tiny_vectors, tmp_path):
    """--train-words-min-count: 'unknownword' (no vector in the tiny vectors) gets a row that starts at zero and
    is fine-tuned; it survives save and load, and the words with vectors keep their ids."""
    clf = Classifier.train(tiny_imdb, tiny_vectors, progress=False, log=lambda s: None,
                           data_config=DataConfig(train_words_min_count=2),
                           model_config=ModelConfig(units=6, maxlen=12, cell="gru", head="max", train_embeddings=True),
                           train_config=TrainConfig(epochs=1, batch_size=8, lr=5e-3, optimizer="adam"))
    plain = Classifier.train(tiny_imdb, tiny_vectors, progress=False, log=lambda s: None, **SMALL)
    assert clf.vocab.words == plain.vocab.words + ["unknownword"]
    row = clf.model.embeddings[clf.vocab.index["unknownword"]]
    assert row.abs().sum() > 0
    again = Classifier.load(clf.save(tmp_path / "m"))
    assert torch.equal(again.model.embeddings[-1], row)
