"""The one table from config fields to command-line options (loopynet.config.FLAGS, COMMAND_FIELDS):
the CLI, the tuner's space keys and its reproduce command all come from it."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import pytest

from loopynet.cli import build_parser, configs_from, parse
from loopynet.config import (
    COMMAND_FIELDS,
    FLAGS,
    DataConfig,
    ModelConfig,
    TaggerConfig,
    TaggerDataConfig,
    TrainConfig,
    TuneSettings,
    argv_words,
    option,
    tagger_train_config,
)
from loopynet.tune.search import reproduce_command
from loopynet.tune.space import Space, tunable_options

# a value other than the default for every tunable option of `loopynet train`
OTHER = {"maxlen": 40, "val_split": 0.25, "oov": "unk", "strip_html": False, "split_periods": False,
         "map_quotes": False, "whole_urls": False, "vector_norm": "unit", "word_weights": "none", "sif_a": 3e-3, "train_words_min_count": 2, "units": 8,
         "dropout": 0.35, "cell": "gru", "layers": 2, "bidirectional": True, "head": "mean", "stateful": True,
         "chunk_len": 7, "train_embeddings": True, "ngram": 2, "ngram_tf": "log", "rnn_maxlen": 30, "members": 3,
         "mask_zero": False, "word_dropout": 0.1,
         "batch_size": 16, "epochs": 3, "lr": 2e-3, "rho": 0.8, "epsilon": 1e-6, "optimizer": "adam",
         "clip_norm": 5.0, "patience": 2, "restore_best": False, "monitor": "val_accuracy", "lr_decay": 0.1,
         "ema_decay": 0.9, "threshold": "auto"}


def test_every_option_of_every_command_has_a_flag_and_train_takes_every_field():
    for command, sections in COMMAND_FIELDS.items():
        for cls, names in sections:
            assert set(names) <= {f.name for f in dataclasses.fields(cls)}, command
            assert all(name in FLAGS for name in names), command
    for cls in (DataConfig, ModelConfig, TrainConfig):
        assert {f.name for f in dataclasses.fields(cls)} == set(dict(COMMAND_FIELDS["train"])[cls])


def test_the_reproduce_command_sets_every_tunable_option(tmp_path):
    assert set(OTHER) == set(tunable_options())
    sections = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
    config = {name: {f.name: OTHER[f.name] for f in dataclasses.fields(cls) if f.name in OTHER}
              for name, cls in sections.items()}
    settings = TuneSettings("d.tar.gz", "v.bin", tmp_path, Space({}, {}), limit=200, seed=3)
    argv = shlex.split(reproduce_command(settings, config))
    args = parse(argv[1:])
    data, model, train = configs_from("train", args, DataConfig(), ModelConfig(), TrainConfig())
    assert data == DataConfig(limit=200, **config["data"])
    assert model == ModelConfig(**config["model"])
    assert train == TrainConfig(seed=3, **config["train"])
    assert argv[:2] == ["loopynet", "train"] and (args.data, args.vectors) == ("d.tar.gz", "v.bin")


def test_values_at_their_default_are_left_out_of_the_reproduce_command(tmp_path):
    settings = TuneSettings("d", "v", tmp_path, Space({}, {}))
    config = {"data": {"maxlen": 400}, "model": {"units": 50}, "train": {"clip_norm": None, "bidirectional": False}}
    assert reproduce_command(settings, config) == f"loopynet train --data d --vectors v --out {tmp_path}/best-model --seed 0"


@pytest.mark.parametrize("name, value, words", [
    ("bidirectional", True, ["--bidirectional"]), ("strip_html", False, ["--no-strip-html"]),
    ("clip_norm", None, ["--clip-norm", "0"]), ("lr", 0.1 + 0.2, ["--lr", "0.30000000000000004"]), ("units", 8, ["--units", "8"]),
])
def test_argv_words(name, value, words):
    assert argv_words(name, value) == words
    if name != "units":
        assert getattr(parse(["train", "--data", "d", "--vectors", "v", "--out", "o", *words]), name) == value


def test_zero_means_off_for_clip_norm_and_patience_in_both_training_commands():
    for command in (["train"], ["tag", "train"]):
        args = parse([*command, "--data", "d", "--vectors", "v", "--out", "o", "--clip-norm", "0", "--patience", "0"])
        assert (args.clip_norm, args.patience) == (None, None)


def test_tag_train_options_build_the_tagger_configs():
    args = parse(["tag", "train", "--data", "d", "--vectors", "v", "--out", "o", "--no-crf", "--no-bidirectional",
                  "--vector-norm", "unit", "--no-train-embeddings", "--units", "7", "--monitor", "val_f1"])
    data, model, train = configs_from("tag train", args, TaggerDataConfig(), TaggerConfig(), tagger_train_config())
    assert (data.vector_norm, data.train_embeddings) == ("unit", False)
    assert (model.crf, model.bidirectional, model.units) == (False, False, 7)
    assert train.monitor == "val_f1" and train == tagger_train_config(monitor="val_f1")


def test_every_optional_flag_of_every_command_gives_its_default_in_its_help():
    import argparse

    seen = []

    def walk(parser, name):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, subparser in action.choices.items():
                    walk(subparser, f"{name} {sub}")
            elif action.option_strings and not action.required and action.dest not in ("help", "version"):
                seen.append(name)
                assert "(default: " in action.help or "deprecated: use" in action.help, (name, action.option_strings)

    walk(build_parser(), "loopynet")
    assert {"loopynet train", "loopynet tag train", "loopynet tune", "loopynet summary", "loopynet data fetch",
            "loopynet diagnose gradients", "loopynet evaluate", "loopynet predict"} <= set(seen)
    assert FLAGS["maxlen"].help_text(400).endswith("(default: 400 tokens)")
    assert FLAGS["clip_norm"].help_text(None).endswith("(default: off)")
    assert option("train_embeddings") == "--train-embeddings"


def test_tune_options_build_the_tune_settings(tmp_path):
    space = tmp_path / "space.toml"
    space.write_text("[units]\nchoices = [4, 8]\n")
    args = parse(["tune", "--data", "d", "--vectors", "v", "--out", "o", "--space", str(space), "--trials", "3",
                  "--workers", "2", "--save-best", "--sampler", "random", "--timeout", "60"])
    (settings,) = configs_from("tune", args, TuneSettings("d", "v", Path("o"), None))
    assert (settings.trials, settings.workers, settings.save_best, settings.sampler, settings.timeout) == (3, 2, True,
                                                                                                        "random", 60.0)
