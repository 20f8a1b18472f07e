"""The new model settings through the CLI and model folders: train -> save -> load -> evaluate -> predict."""

from __future__ import annotations

import json

import pytest
import torch

from loopynet import Classifier
from loopynet.cli import main
from loopynet.models.classifier import BookClassifier
from loopynet.models.recurrent_classifier import RecurrentClassifier

FLAGS = ["--maxlen", "12", "--units", "6", "--epochs", "2", "--batch-size", "8", "--quiet", "--lr", "0.01",
         "--optimizer", "adam"]


@pytest.mark.parametrize("extra", [
    ["--cell", "gru", "--bidirectional", "--head", "mean", "--train-embeddings"],
    ["--cell", "lstm", "--layers", "2", "--stateful", "--chunk-len", "5", "--head", "last"],
    ["--cell", "rnn", "--bidirectional", "--head", "flatten"],
])
def test_cli_trains_saves_loads_evaluates_and_predicts(extra, tiny_imdb, tiny_vectors, tmp_path, capsys):
    out = tmp_path / "model"
    assert main(["train", "--data", str(tiny_imdb), "--vectors", str(tiny_vectors), "--out", str(out), *FLAGS, *extra]) == 0
    clf = Classifier.load(out)
    assert isinstance(clf.model, RecurrentClassifier)
    config = json.loads((out / "config.json").read_text())["model"]
    assert config["cell"] == extra[1] and config["bidirectional"] == ("--bidirectional" in extra)
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", str(tiny_imdb), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["support"] == 40
    assert main(["predict", str(out), "great wonderful movie", "--json"]) == 0  # a single text
    assert len(json.loads(capsys.readouterr().out)) == 1
    again = Classifier.load(out)
    texts = ["the plot was awful and boring .", "", "loved it"]
    assert torch.allclose(torch.tensor(again.predict_proba(texts)), torch.tensor(clf.predict_proba(texts)))


def test_a_config_json_without_the_new_keys_loads_the_book_model(tiny_imdb, tiny_vectors, tmp_path):
    out = tmp_path / "book"
    assert main(["train", "--data", str(tiny_imdb), "--vectors", str(tiny_vectors), "--out", str(out), *FLAGS]) == 0
    path = out / "config.json"
    config = json.loads(path.read_text())
    for key in ("cell", "layers", "bidirectional", "head", "stateful", "chunk_len", "train_embeddings", "ngram", "rnn_maxlen"):
        config["model"].pop(key)
    path.write_text(json.dumps(config))
    clf = Classifier.load(out)
    assert isinstance(clf.model, BookClassifier) and clf.model.config.cell == "rnn"
    assert len(clf.predict(["great"])) == 1


def test_bad_combination_is_one_clear_cli_error(tiny_imdb, tiny_vectors, tmp_path, capsys):
    code = main(["train", "--data", str(tiny_imdb), "--vectors", str(tiny_vectors), "--out", str(tmp_path / "m"),
                 *FLAGS, "--stateful", "--head", "flatten", "--chunk-len", "4"])
    assert code == 2
    assert "--stateful needs --head" in capsys.readouterr().err
