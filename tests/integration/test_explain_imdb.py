"""loopynet explain / encode on a model trained on a slice of the real IMDB archive and vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from loopynet import Classifier, DataConfig, ModelConfig, TrainConfig
from loopynet.cli import main
from loopynet.explain.encode import read_vectors

SAMPLE_1 = ("I hate that the dismal weather had me down for so long, when will it break! Ugh, when does happiness "
            "return? The sun is blinding and the puffy clouds are too thin. I can't wait for the weekend.")


@pytest.fixture(scope="module")
def imdb_lstm(real_data, tmp_path_factory):
    """imdb-rnn's architecture, small: bidirectional LSTM(8), max head, first 80 tokens, 600 reviews."""
    clf = Classifier.train(real_data["imdb"], real_data["vectors"], DataConfig(limit=600),
                           ModelConfig(units=8, cell="lstm", bidirectional=True, head="max", maxlen=80),
                           TrainConfig(epochs=1, optimizer="adam", lr=2e-3), progress=False, log=lambda s: None)
    return clf, clf.save(tmp_path_factory.mktemp("explain") / "lstm")


def test_sample_1_and_a_long_review_are_complete_and_marked(imdb_lstm):
    clf, _ = imdb_lstm
    long_review = " ".join([SAMPLE_1] * 3)  # 3 x 45 tokens: those after the 80th read one are cut
    short, long = clf.explain([SAMPLE_1, long_review])
    for e in (short, long):
        gap = e["logit"] - e["baseline_logit"]
        assert abs(e["attribution"].sum() - gap) <= 0.01 * abs(gap) + 1e-3
        assert e["probability"] == pytest.approx(clf.predict_proba([e["text"]])[0], abs=1e-6)
    statuses = [t["status"] for t in short["tokens"]]
    read = statuses.count("in")  # the words of sample_1 that this slice's vocabulary has (of 45 tokens)
    assert len(statuses) == 45 and len(short["attribution"]) == read > 35 and statuses.count("oov") == 45 - read
    statuses = [t["status"] for t in long["tokens"]]
    assert statuses.count("cut") == 3 * read - 80 and statuses.count("oov") == 3 * (45 - read)
    assert len(long["attribution"]) == 80


def test_encode_and_corpus_view_on_test_reviews(imdb_lstm, real_data, tmp_path, capsys):
    clf, folder = imdb_lstm
    out = tmp_path / "vectors.parquet"
    assert main(["encode", str(folder), "--data", str(real_data["imdb"]), "--limit", "64", "--out", str(out)]) == 0
    vectors, records = read_vectors(out)
    assert vectors.shape == (64, 16) and len({r["id"] for r in records}) == 64
    assert {r["label"] for r in records} == {"neg", "pos"} and all(1 <= r["length"] <= 80 for r in records)
    capsys.readouterr()
    assert main(["explain", str(folder), "--data", str(real_data["imdb"]), "--limit", "12", "--top", "5",
                 "--min-count", "3", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)
    assert 0 < len(top["positive"]) <= 5 and 0 < len(top["negative"]) <= 5
    assert all(r["count"] >= 3 for r in top["positive"] + top["negative"]) and top["positions"] <= 12 * 80
    assert np.all(np.diff([r["mean"] for r in top["positive"]]) <= 0)
