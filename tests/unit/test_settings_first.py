"""Settings that cannot work are reported before any data or vector file is read."""

from __future__ import annotations

import pytest

from loopynet.tasks.classification import api as classifier_module
from loopynet.tasks.tagging import api as tagger_module
from loopynet.cli import main
from loopynet.config import ConfigError, ModelConfig


@pytest.fixture
def no_reading(monkeypatch):
    """Reading data or vectors fails the test: the settings error must come first."""
    def refuse(*args, **kwargs):
        pytest.fail(f"a file was read before the settings were checked: {args}")

    monkeypatch.setattr(classifier_module, "load_vectors", refuse)
    monkeypatch.setattr(classifier_module, "prepare_training_data", refuse)
    monkeypatch.setattr(tagger_module, "load_vectors", refuse)
    monkeypatch.setattr(tagger_module, "read_tagged", refuse)


@pytest.mark.parametrize("flags, message", [
    (["--units", "0"], "units must be >= 1, got 0"),
    (["--bidirectional", "--stateful", "--chunk-len", "20", "--head", "max"], "it cannot be --bidirectional"),
    (["--stateful"], "--stateful needs --chunk-len K >= 1"),
    (["--chunk-len", "5"], "--chunk-len applies only with --stateful"),
    (["--dropout", "1.5"], "dropout must be in [0, 1), got 1.5"),
    (["--ngram", "-1"], "ngram must be >= 0, got -1"),
])
def test_train_settings_errors_come_before_missing_data(no_reading, tmp_path, capsys, flags, message):
    argv = ["train", "--data", str(tmp_path / "no-such-data"), "--vectors", str(tmp_path / "no-such.bin"),
            "--out", str(tmp_path / "o"), *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("loopynet train: error: ") and message in err and "no such" not in err


@pytest.mark.parametrize("flags, message", [
    (["--units", "0"], "units must be >= 1, got 0"),
    (["--dropout", "1"], "dropout must be in [0, 1), got 1.0"),
    (["--batch-size", "0"], "batch_size must be >= 1, got 0"),
])
def test_tag_train_settings_errors_come_before_missing_data(no_reading, tmp_path, capsys, flags, message):
    argv = ["tag", "train", "--data", str(tmp_path / "no-such-conll"), "--vectors", str(tmp_path / "no-such.bin"),
            "--out", str(tmp_path / "o"), *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("loopynet tag: error: ") and message in err and "no such" not in err


def test_the_api_checks_the_model_settings_first(no_reading):
    with pytest.raises(ConfigError, match="units must be >= 1, got 0"):
        classifier_module.Classifier.train("no-such-data", "no-such.bin", model_config=ModelConfig(units=0))
