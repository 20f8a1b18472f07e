"""Model folders written before the structural step (issue 11) still load and give the same outputs.

tests/fixtures/folders-0.1.0 was written by loopynet 0.1.0 at commit ba99b2a (before issue 11): a book
classifier, a bidirectional LSTM classifier (max head) and a tagger trained on tiny synthetic data with
one thread; expected.json holds their outputs then. The tagger's config.json uses the old field names
`finetune` and `vector_scale` (now train_embeddings and vector_norm).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from loopynet import Classifier, Tagger

FOLDERS = Path(__file__).resolve().parents[1] / "fixtures" / "folders-0.1.0"
EXPECTED = json.loads((FOLDERS / "expected.json").read_text())
TEXTS = ["great wonderful film", "the plot was awful and boring", "", "movie"]


@pytest.mark.parametrize("name", ["classifier-book", "classifier-lstm"])
def test_an_old_classifier_folder_loads_and_predicts_as_before(name, one_thread):
    clf = Classifier.load(FOLDERS / name)
    np.testing.assert_allclose(clf.predict_proba(TEXTS), EXPECTED[name], rtol=0, atol=1e-6)


def test_an_old_tagger_folder_loads_under_the_new_field_names(one_thread):
    raw = json.loads((FOLDERS / "tagger" / "config.json").read_text())["data"]
    assert {"finetune", "vector_scale"} <= set(raw) and not {"train_embeddings", "vector_norm"} & set(raw)
    tagger = Tagger.load(FOLDERS / "tagger")
    assert (tagger.data_config.train_embeddings, tagger.data_config.vector_norm) == (raw["finetune"], raw["vector_scale"])
    texts = ["Angela Merkel met the film in Paris .", ""]
    constrained = tagger.predict(texts)
    K = len(tagger.tag_names)  # expected.json was decoded without the scheme's constraints (issue 13):
    tagger.model.constrain(np.ones(K, bool), np.ones((K, K), bool), np.ones(K, bool))  # lift them: same output
    assert tagger.predict(texts) == EXPECTED["tagger"]
    assert EXPECTED["tagger"][0]["tags"][0] == "I-LOC"  # then: an entity opened with I- (invalid IOB2)
    assert [t[:2] for t in constrained[0]["tags"]] == ["B-", "I-"] * 4 and constrained[1]["tags"] == []
