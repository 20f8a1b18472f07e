"""`loopynet export --format keras`: Keras 3 (torch backend) loads the file with keras.saving.load_model and
predicts the probabilities loopynet predicts, within 1e-5, from token ids."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
from test_bad_input import one_line_error
from test_keras_import import EXPECTED, FORMATS, import_cli

from loopynet.tasks.classification.api import Classifier
from loopynet.cli import main
from loopynet.data.batching import pad_trunc
from loopynet.data.prepare import tokenizer_options
from loopynet.data.tokenize import tokenize
from loopynet.data.vocab import encode_texts

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported: CI installs keras without TensorFlow
keras = pytest.importorskip("keras", reason="keras is not installed (pip install 'loopynet[keras]'; CI installs it)")

TINY = ["--maxlen", "12", "--units", "4", "--epochs", "1", "--batch-size", "8", "--quiet", "--threads", "1"]
TEXTS = ["the movie was great and wonderful .", "awful boring plot", "", "a film", "superb " * 20,
         "the actor was dreadful and the plot terrible but the film loved ."]


def trained(tiny_imdb, tiny_vectors, out, *extra):
    assert main(["train", "--data", str(tiny_imdb), "--vectors", str(tiny_vectors), "--out", str(out), *TINY,
                 *extra]) == 0
    return out


def keras_probabilities(model_dir, texts) -> np.ndarray:
    """Export `model_dir`, load the file with Keras, predict token ids padded to maxlen."""
    out = model_dir.parent / f"{model_dir.name}.keras"
    assert main(["export", str(model_dir), "--format", "keras", "--out", str(out)]) == 0
    clf = Classifier.load(model_dir)
    docs = encode_texts([tokenize(t, tokenizer_options(clf.data_config)) for t in texts], clf.vocab)
    ids = pad_trunc(docs, np.arange(len(texts)), clf.maxlen).astype(np.int32)
    return keras.saving.load_model(out).predict(ids, verbose=0)[:, 0]


@pytest.mark.parametrize("name, extra", [
    ("book", []),
    ("imdb-rnn", ["--preset", "imdb-rnn"]),  # bidirectional LSTM, max head, fine-tuned vectors
    ("gru-last-2-layers", ["--cell", "gru", "--head", "last", "--layers", "2"]),
    ("bigru-last", ["--cell", "gru", "--head", "last", "--bidirectional"]),
    ("rnn-mean", ["--head", "mean"]),
    ("lstm-flatten", ["--cell", "lstm"]),
    ("bilstm-max-unmasked", ["--cell", "lstm", "--bidirectional", "--head", "max", "--no-mask-zero"]),  # as Keras
])
def test_exported_model_predicts_as_loopynet(name, extra, tiny_imdb, tiny_vectors, tmp_path, one_thread):
    model_dir = trained(tiny_imdb, tiny_vectors, tmp_path / name, *extra, *(TINY if extra else []))
    mine = Classifier.load(model_dir).predict_proba(TEXTS)
    theirs = keras_probabilities(model_dir, TEXTS)
    assert np.ptp(mine) > 1e-3  # the texts get different probabilities: the comparison tests the weights
    assert np.abs(mine - theirs).max() < 1e-5, (mine, theirs)


@pytest.mark.parametrize("kind", ["bigru_flatten", "stacked_birnn_max", "rnn_last"])
def test_keras_model_round_trip(kind, tmp_path):
    """Keras -> loopynet -> Keras: the exported model (no mask, as imported) gives Keras' original predictions."""
    assert import_cli(FORMATS["keras3 .keras"][0](kind), tmp_path / "m") == 0
    texts = [" ".join(EXPECTED["words"][i - 1] for i in row if i) for row in EXPECTED["inputs"]]
    theirs = keras_probabilities(tmp_path / "m", texts)
    assert np.abs(theirs - np.array(EXPECTED["predictions"][kind]["keras3"])).max() < 1e-5


def test_export_refusals(tiny_imdb, tiny_vectors, tmp_path, capsys, one_thread):
    model_dir = trained(tiny_imdb, tiny_vectors, tmp_path / "book")
    capsys.readouterr()
    assert main(["export", str(model_dir), "--format", "keras", "--out", str(tmp_path / "book.h5")]) == 2
    one_line_error(capsys, "a Keras 3 model file must end in .keras")
    assert main(["export", str(model_dir), "--format", "keras", "--out", str(tmp_path / "no" / "b.keras")]) == 2
    one_line_error(capsys, "does not exist")
    ngram = trained(tiny_imdb, tiny_vectors, tmp_path / "ngram", "--ngram", "2", "--head", "max")
    capsys.readouterr()
    assert main(["export", str(ngram), "--format", "keras", "--out", str(tmp_path / "ngram.keras")]) == 2
    one_line_error(capsys, "an n-gram ensemble (ngram=2) has no Keras equivalent")
    concat = trained(tiny_imdb, tiny_vectors, tmp_path / "concat", "--cell", "gru", "--head", "concat")
    capsys.readouterr()
    assert main(["export", str(concat), "--format", "keras", "--out", str(tmp_path / "concat.keras")]) == 2
    one_line_error(capsys, "the concat head (last, max and mean side by side) is not exported to Keras")
    assert not [p.name for p in tmp_path.iterdir() if ".keras" in p.name or p.suffix == ".h5"]


def test_missing_keras_is_one_line(tiny_imdb, tiny_vectors, tmp_path, capsys, monkeypatch, one_thread):
    model_dir = trained(tiny_imdb, tiny_vectors, tmp_path / "book")
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "keras", None)  # as if not installed
    assert main(["export", str(model_dir), "--format", "keras", "--out", str(tmp_path / "b.keras")]) == 2
    one_line_error(capsys, "keras is not installed; install the extra: pip install 'loopynet[keras]'")
    assert not (tmp_path / "b.keras").exists()


def test_exported_file_is_a_keras_archive(tiny_imdb, tiny_vectors, tmp_path, one_thread):
    import zipfile

    model_dir = trained(tiny_imdb, tiny_vectors, tmp_path / "book")
    assert main(["export", str(model_dir), "--format", "keras", "--out", str(tmp_path / "b.keras")]) == 0
    with zipfile.ZipFile(tmp_path / "b.keras") as archive:
        config = json.loads(archive.read("config.json"))
    layers = [layer["class_name"] for layer in config["config"]["layers"]]
    assert layers == ["InputLayer", "Embedding", "SimpleRNN", "Dropout", "Flatten", "Dense"]
    embedding = config["config"]["layers"][1]["config"]
    assert embedding["mask_zero"] is False and embedding["trainable"] is False
