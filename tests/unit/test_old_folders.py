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


def test_maxlen_has_one_home_and_old_folders_hold_it_twice(tmp_path, one_thread):
    """Since issue 11 maxlen lives in ModelConfig only; 0.1.0 folders hold it in "data" and "model" (equal)
    and load with it moved; a folder holding it only under "data" loads the same; unequal values are refused."""
    from loopynet.config import DataConfig, ModelConfig
    from loopynet.io.artifact import ArtifactError

    assert "maxlen" not in DataConfig.__dataclass_fields__ and ModelConfig().maxlen == 400
    raw = json.loads((FOLDERS / "classifier-book" / "config.json").read_text())
    assert raw["data"]["maxlen"] == raw["model"]["maxlen"] == 12
    assert Classifier.load(FOLDERS / "classifier-book").maxlen == 12
    for name, edit, works in (("data-only", lambda c: c["model"].pop("maxlen"), True),
                              ("unequal", lambda c: c["data"].update(maxlen=13), False)):
        folder = tmp_path / name
        folder.mkdir()
        for f in (FOLDERS / "classifier-book").iterdir():
            (folder / f.name).write_bytes(f.read_bytes())
        config = json.loads(raw_text := (folder / "config.json").read_text())
        edit(config)
        (folder / "config.json").write_text(json.dumps(config))
        assert raw_text != (folder / "config.json").read_text()
        if works:
            np.testing.assert_allclose(Classifier.load(folder).predict_proba(TEXTS), EXPECTED["classifier-book"],
                                       rtol=0, atol=1e-6)
        else:
            with pytest.raises(ArtifactError, match="data section's maxlen 13 differs from the model's 12"):
                Classifier.load(folder)


def test_a_checkpoint_that_recorded_data_maxlen_resumes_under_model_maxlen(tmp_path):
    """Checkpoints written before issue 11 recorded data.maxlen (the value training used) and a model.maxlen
    that could differ (ModelConfig's default when only DataConfig(maxlen=...) was given)."""
    import torch

    from loopynet.train.checkpoint import CheckpointError, check_resume, save_checkpoint

    save_checkpoint(tmp_path, {"model": {}, "settings": {"data": {"maxlen": 12, "limit": None},
                                                         "model": {"maxlen": 400, "units": 6}}})
    now = {"data": {"limit": None}, "model": {"maxlen": 12, "units": 6}}
    assert check_resume(tmp_path, now)["settings"]["data"]["maxlen"] == 12
    with pytest.raises(CheckpointError, match=r"model.maxlen: checkpoint 12, now 400"):
        check_resume(tmp_path, {"data": {"limit": None}, "model": {"maxlen": 400, "units": 6}})
    assert torch.load(tmp_path / "last.pt", weights_only=True)["settings"]["model"]["maxlen"] == 400  # file unchanged
