"""`POST /v1/tag` of a tagger folder (trained on a small CoNLL slice with tiny vectors) answers what
`Tagger.predict` answers, next to a classifier served by the same app."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED_DATA, write_word2vec
from fastapi.testclient import TestClient

from loopynet import Tagger, TaggerConfig, TaggerDataConfig, TrainConfig
from loopynet.data.conll import read_split
from loopynet.serve.app import create_app
from loopynet.serve.registry import load_served
from loopynet.serve.settings import ServeSettings

pytestmark = pytest.mark.usefixtures("one_thread")
CONLL = SHARED_DATA / "conll2003"


def test_tag_answers_entity_spans_like_the_tagger(tmp_path):
    words = sorted({t.lower() for s in read_split(CONLL, "train")[:40] for t in s.tokens})
    vectors = write_word2vec(tmp_path / "conll.bin", words, np.random.default_rng(0).normal(0, 1, (len(words), 6)))
    Tagger.train(CONLL, vectors, TaggerDataConfig(limit=40, validation_limit=10),
                 TaggerConfig(units=6, char_filters=4, char_dims=3, casing_dims=2),
                 TrainConfig(epochs=1, optimizer="adam", lr=0.01, batch_size=16), progress=False,
                 log=lambda s: None).save(tmp_path / "ner")
    settings = ServeSettings(models=[str(tmp_path / "ner")])
    texts = ["Angela Merkel visited Paris .", ""]
    with TestClient(create_app(settings, load_served(settings.models))) as client:
        body = client.post("/v1/tag", json={"texts": texts}).json()
        assert client.post("/v1/predict", json={"texts": ["a"]}).status_code == 404  # no classifier served
        assert client.get("/v1/models").json()["models"][0]["kind"] == "tagger"
    expected = Tagger.load(tmp_path / "ner").predict(texts)
    assert body["model"] == "ner" and [{k: r[k] for k in expected[0]} for r in body["results"]] == expected
    assert [r["truncated"] for r in body["results"]] == [False, False]
