"""The chapter's model trained by Keras 3 (tests/fixtures/keras/make_fixtures.py imdb: book settings, a
2,000-review slice of IMDB's train split, loopynet's book pipeline), imported by loopynet and evaluated on
the 2,000-review test slice that Keras' own `evaluate` (fed by a generator) scored."""

from __future__ import annotations

import json
from pathlib import Path

from loopynet.tasks.classification.api import Classifier
from loopynet.cli import main
from loopynet.models.classifier import BookClassifier

IMDB_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "keras" / "imdb"


def test_imported_chapter_model_reproduces_keras_evaluate(real_data, tmp_path, one_thread):
    keras = json.loads((IMDB_FIXTURE / "keras_result.json").read_text())
    out = tmp_path / "from-keras3"
    assert main(["import", "keras", str(IMDB_FIXTURE / "chapter_model.keras"), "--vectors", str(real_data["vectors"]),
                 "--out", str(out)]) == 0
    clf = Classifier.load(out)
    assert isinstance(clf.model, BookClassifier) and (clf.model.config.units, clf.maxlen) == (50, 400)
    metrics = clf.evaluate(real_data["imdb"], split="test", limit=keras["test_documents"])
    assert metrics["support"] == keras["test_documents"] == 2000
    assert round(metrics["accuracy"], 4) == round(keras["keras_evaluate_accuracy"], 4)
    assert round(metrics["accuracy"] * 2000) == keras["correct"]
