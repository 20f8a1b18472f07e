"""The Tagger API and `loopynet tag` CLI on a small real CoNLL slice with tiny vectors: save -> load ->
identical tags, the model-folder format, evaluate/predict output, and clear errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import SHARED_DATA, write_word2vec

from loopynet.cli import main
from loopynet.config import TrainConfig
from loopynet.data.conll import read_split
from loopynet.io.artifact import ArtifactError
from loopynet.config import TaggerConfig, TaggerDataConfig
from loopynet.tasks.tagging.api import Tagger
from loopynet.tasks.tagging.encoding import entities

CONLL = SHARED_DATA / "conll2003"
SMALL = {"data_config": TaggerDataConfig(limit=60, validation_limit=30, train_embeddings=True),
         "model_config": TaggerConfig(units=8, char_dims=4, char_filters=6, casing_dims=3),
         "train_config": TrainConfig(epochs=2, optimizer="adam", lr=0.01, batch_size=16, seed=0)}

pytestmark = pytest.mark.usefixtures("one_thread")



@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    words = sorted({t.lower() for s in read_split(CONLL, "train")[:60] for t in s.tokens})
    vecs = np.random.default_rng(0).normal(0, 1, (len(words), 6))
    return write_word2vec(tmp_path_factory.mktemp("vec") / "conll6.bin", words, vecs)


@pytest.fixture(scope="module")
def trained(vectors, tmp_path_factory):
    tagger = Tagger.train(CONLL, vectors, progress=False, log=lambda s: None, **SMALL)
    return tagger, tagger.save(tmp_path_factory.mktemp("tagger") / "m")


def test_save_load_gives_identical_tags(trained):
    tagger, folder = trained
    loaded = Tagger.load(folder)
    sentences = [s.tokens for s in read_split(CONLL, "test")[:40]]
    assert loaded.tag(sentences) == tagger.tag(sentences)
    texts = ["EU rejects German call to boycott British lamb .", ""]
    assert loaded.predict(texts) == tagger.predict(texts)
    a, b = loaded.evaluate("valid", limit=30), tagger.evaluate("valid", limit=30)
    assert (a["f1"], a["token_accuracy"], a["loss"]) == pytest.approx((b["f1"], b["token_accuracy"], b["loss"]))


def test_model_folder_format(trained):
    _, folder = trained
    config = json.loads((folder / "config.json").read_text())
    assert config["kind"] == "tagger" and config["format"] == "loopynet-model"
    assert config["data"]["data"] == str(CONLL) and config["tag_names"][0] == "O"
    assert config["model"]["finetune_words"] > 0
    history = json.loads((folder / "history.json").read_text())
    assert len(history) == 2 and {"loss", "val_loss", "val_accuracy", "val_f1"} <= set(history[0])
    report = json.loads((folder / "data_report.json").read_text())
    assert report["train"]["sentences"] == 60 and report["validation"]["sentences"] == 30


def test_load_refuses_a_classifier_folder_and_bad_tensors(trained, tmp_path):
    _, folder = trained
    copy = tmp_path / "c"
    shutil.copytree(folder, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(config | {"kind": "classifier"}))
    with pytest.raises(ArtifactError, match="not a tagger"):
        Tagger.load(copy)
    config["model"]["units"] = 9
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match="does not match"):
        Tagger.load(copy)


def test_predict_output_and_entity_spans(trained):
    [r] = trained[0].predict([["Peter", "Blackburn", "visited", "Paris"]])
    assert r["tokens"] == ["Peter", "Blackburn", "visited", "Paris"] and len(r["tags"]) == 4
    assert entities(["Peter", "Blackburn", "in", "New", "York"], ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]) == [
        {"type": "PER", "text": "Peter Blackburn", "start": 0, "end": 2},
        {"type": "LOC", "text": "New York", "start": 3, "end": 5}]


def test_cli_train_evaluate_predict(vectors, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["tag", "train", "--data", str(CONLL), "--vectors", str(vectors), "--out", str(out), "--limit", "40",
                 "--validation-limit", "20", "--epochs", "1", "--units", "6", "--char-filters", "0", "--no-crf",
                 "--quiet", "--threads", "1"]) == 0
    assert "saved" in capsys.readouterr().out
    assert (tmp_path / "cli.checkpoint" / "last.pt").is_file()
    assert main(["tag", "evaluate", str(out), "--split", "test", "--limit", "25", "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["sentences"] == 25 and {"PER", "ORG", "LOC", "MISC"} >= set(m["per_type"]) and 0 <= m["f1"] <= 1
    assert main(["tag", "evaluate", str(out), "--data", str(CONLL), "--split", "valid", "--limit", "10"]) == 0
    text = capsys.readouterr().out
    assert "overall" in text and "token accuracy" in text
    assert main(["tag", "predict", str(out), "Germany beat England 2-1 .", "", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["tokens"] for r in results] == [["Germany", "beat", "England", "2-1", "."], []]
    assert main(["tag", "predict", str(out), "Peter went to Paris ."]) == 0
    assert "Peter/" in capsys.readouterr().out
    assert main(["tag", "evaluate", str(out), "--data", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_concatenated_vectors(tmp_path):
    from loopynet.data.vectors import load_vectors
    from loopynet.tasks.tagging.vectors import concatenate_vectors

    cased = write_word2vec(tmp_path / "a.bin", ["Paris", "the"], np.array([[1.0, 2.0], [3.0, 4.0]]))
    lower = write_word2vec(tmp_path / "b.bin", ["paris", "lamb"], np.array([[5.0], [6.0]]))
    wv = concatenate_vectors([load_vectors(cased), load_vectors(lower)], TaggerDataConfig(vector_norm="none"))
    rows = {w: wv.vectors[i].tolist() for w, i in wv.index.items()}
    assert rows == {"Paris": [1, 2, 5], "the": [3, 4, 0], "paris": [0, 0, 5], "lamb": [0, 0, 6]}
    assert len(wv.fingerprint["concatenated"]) == 2


def test_resume_equals_an_uninterrupted_run(vectors, tmp_path):
    from dataclasses import replace

    kwargs = {**SMALL, "progress": False, "log": lambda s: None}
    full = Tagger.train(CONLL, vectors, **{**kwargs, "train_config": replace(SMALL["train_config"], epochs=3)})
    Tagger.train(CONLL, vectors, checkpoint_dir=tmp_path / "ck", **kwargs)  # 2 epochs, "killed"
    resumed = Tagger.train(CONLL, vectors, checkpoint_dir=tmp_path / "ck", resume=True,
                           **{**kwargs, "train_config": replace(SMALL["train_config"], epochs=3)})
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in full.history]
    sentences = [s.tokens for s in read_split(CONLL, "valid")[:20]]
    assert resumed.tag(sentences) == full.tag(sentences)


def test_iobes_scheme_learns_s_and_e_tags_and_outputs_iob2(vectors, tmp_path):
    config = dict(SMALL, data_config=TaggerDataConfig(limit=60, validation_limit=30, train_embeddings=True, tag_scheme="iobes"))
    tagger = Tagger.train(CONLL, vectors, progress=False, log=lambda s: None, **config)
    assert tagger.tag_names[:5] == ["O", "B-PER", "I-PER", "E-PER", "S-PER"] and len(tagger.tag_names) == 17
    loaded = Tagger.load(tagger.save(tmp_path / "iobes"))
    sentences = [s.tokens for s in read_split(CONLL, "valid")[:20]]
    tags = loaded.tag(sentences)
    assert tags == tagger.tag(sentences)
    assert all(t == "O" or t[:2] in ("B-", "I-") for s in tags for t in s)  # IOB2 out
    metrics = loaded.evaluate("valid", limit=20)  # gold IOB2 -> IOBES for the loss; metrics on IOB2
    assert metrics["entities"] == sum(t.startswith("B-") for s in read_split(CONLL, "valid")[:20] for t in s.tags)


def test_cli_defaults_are_the_api_defaults():
    """`loopynet tag train` and `Tagger.train` default to the same recipe (the one docs/tagger.md measures)."""
    from loopynet.cli import configs_from, parse
    from loopynet.config import tagger_train_config

    args = parse(["tag", "train", "--data", "d", "--vectors", "v", "--out", "o"])
    bases = TaggerDataConfig(limit=7), TaggerConfig(units=1), tagger_train_config(epochs=1)
    assert configs_from("tag train", args, *bases) == [TaggerDataConfig(), TaggerConfig(), tagger_train_config()]


@pytest.mark.parametrize("old, new, field, value", [
    (["--finetune"], ["--train-embeddings"], "train_embeddings", True),
    (["--no-finetune"], ["--no-train-embeddings"], "train_embeddings", False),
    (["--unidirectional"], ["--no-bidirectional"], "bidirectional", False),
    (["--vector-scale", "unit"], ["--vector-norm", "unit"], "vector_norm", "unit"),
])
def test_old_option_names_still_work_and_warn_once(old, new, field, value, capsys):
    from loopynet import cli

    cli._WARNED.clear()
    base = ["tag", "train", "--data", "d", "--vectors", "v", "--out", "o"]
    assert getattr(cli.parse(base + new), field) == value
    assert capsys.readouterr().err == ""
    assert getattr(cli.parse(base + old + old), field) == value
    assert cli.parse(base + old).__dict__ == cli.parse(base + new).__dict__
    assert capsys.readouterr().err == f"loopynet tag train: warning: {old[0]} is deprecated; use {new[0]}\n"


def test_a_folder_from_before_tag_schemes_loads_as_iob2(vectors, tmp_path):
    config = dict(SMALL, data_config=TaggerDataConfig(limit=60, validation_limit=30, tag_scheme="iob2"))
    tagger = Tagger.train(CONLL, vectors, progress=False, log=lambda s: None, **config)
    assert tagger.tag_names[:3] == ["O", "B-PER", "I-PER"] and len(tagger.tag_names) == 9
    copy = tagger.save(tmp_path / "older")
    config = json.loads((copy / "config.json").read_text())
    config["data"].pop("tag_scheme")
    (copy / "config.json").write_text(json.dumps(config))
    loaded = Tagger.load(copy)
    assert loaded.data_config.tag_scheme == "iob2" and loaded.evaluate("valid", limit=10)["sentences"] == 10


def test_a_char_lstm_tagger_round_trips_and_a_folder_without_char_encoder_loads_as_cnn(vectors, trained, tmp_path):
    config = dict(SMALL, model_config=TaggerConfig(units=8, char_dims=4, char_encoder="both", char_filters=6,
                                                   char_units=3, casing_dims=3))
    tagger = Tagger.train(CONLL, vectors, progress=False, log=lambda s: None, **config)
    folder = tagger.save(tmp_path / "both")
    assert json.loads((folder / "config.json").read_text())["model"]["char_encoder"] == "both"
    loaded = Tagger.load(folder)
    sentences = [s.tokens for s in read_split(CONLL, "test")[:40]]
    assert loaded.model.config == tagger.model.config and loaded.tag(sentences) == tagger.tag(sentences)
    cnn, folder = trained
    older = tmp_path / "cnn"
    shutil.copytree(folder, older)
    raw = json.loads((older / "config.json").read_text())
    for key in ("char_encoder", "char_units", "layers", "dropout_mode"):  # as written before the fields existed
        del raw["model"][key]
    (older / "config.json").write_text(json.dumps(raw))
    loaded = Tagger.load(older)
    assert loaded.model.config == cnn.model.config and loaded.tag(sentences) == cnn.tag(sentences)


def test_a_two_layer_variational_nadam_tagger_round_trips(vectors, tmp_path):
    """--layers 2 --dropout-mode variational --optimizer nadam: trains, saves the config and the second layer's
    weights, and loads to the same tags."""
    config = dict(SMALL, model_config=TaggerConfig(units=8, layers=2, dropout_mode="variational", char_dims=4,
                                                   char_filters=6, casing_dims=3),
                  train_config=TrainConfig(epochs=2, optimizer="nadam", lr=0.01, batch_size=16, seed=0))
    tagger = Tagger.train(CONLL, vectors, progress=False, log=lambda s: None, **config)
    folder = tagger.save(tmp_path / "deep")
    saved = json.loads((folder / "config.json").read_text())
    assert (saved["model"]["layers"], saved["model"]["dropout_mode"], saved["train"]["optimizer"]) == \
        (2, "variational", "nadam")
    loaded = Tagger.load(folder)
    sentences = [s.tokens for s in read_split(CONLL, "test")[:40]]
    assert loaded.model.config == tagger.model.config and len(loaded.model.upper) == 1
    assert loaded.tag(sentences) == tagger.tag(sentences)
