"""Named recipes: --preset sets defaults, explicit flags override them."""

from __future__ import annotations

import pytest

from loopynet.cli import build_parser, main, parse
from loopynet.config import ModelConfig
from loopynet.presets import PRESETS

BASE = ["train", "--data", "d", "--vectors", "v", "--out", "o"]


def test_every_preset_names_only_train_flags_and_valid_model_settings():
    dests = {a.dest for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions}
    for name, preset in PRESETS.items():
        assert preset["description"]
        assert set(preset["flags"]) <= dests, (name, set(preset["flags"]) - dests)
        args = parse([*BASE, "--preset", name])
        ModelConfig(cell=args.cell, head=args.head, layers=args.layers)  # valid names
        assert args.cell in ("rnn", "gru", "lstm") and args.head in ("flatten", "last", "mean", "max")


def test_preset_values_become_defaults_and_explicit_flags_win():
    args = parse([*BASE, "--preset", "imdb-rnn", "--units", "8", "--epochs", "1"])
    assert args.units == 8 and args.epochs == 1
    assert args.cell == PRESETS["imdb-rnn"]["flags"]["cell"] and args.split_periods and args.train_embeddings
    default = parse(BASE)
    assert default.cell == "rnn" and default.head == "flatten" and default.split_periods and default.vector_norm == "abtt"
    assert (default.word_weights, default.sif_a) == ("sif", 1e-3)
    assert parse([*BASE, "--preset", "imdb-rnn"]).word_weights == "none"  # the recipes keep what they were measured with
    assert not default.train_embeddings
    book = parse([*BASE, "--preset", "book"])
    assert (book.strip_html, book.split_periods, book.map_quotes, book.vector_norm, book.word_weights) == (
        False, False, False, "none", "none")
    assert not parse([*BASE, "--no-split-periods"]).split_periods  # a default that is on can be switched off


def test_unknown_preset_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit):
        main([*BASE, "--preset", "nope"])
    assert "invalid choice" in capsys.readouterr().err


def test_switches_a_preset_turns_on_can_be_turned_off():
    args = parse([*BASE, "--preset", "imdb-rnn", "--no-bidirectional", "--no-train-embeddings"])
    assert PRESETS["imdb-rnn"]["flags"]["bidirectional"] and not args.bidirectional and not args.train_embeddings
