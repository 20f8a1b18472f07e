"""`loopynet.tune.space`: parsing and validating the TOML search space, and suggesting from it."""

from __future__ import annotations

import tomllib

import optuna
import pytest

from loopynet.tune.space import DEFAULT_SPACE, Param, SpaceError, load_space, parse_space, tunable_options

optuna.logging.set_verbosity(optuna.logging.WARNING)


def parse(text: str):
    return parse_space(tomllib.loads(text), "space.toml")


def suggestions(space, n: int = 30, seed: int = 0) -> list[dict]:
    """`n` suggestions of a seeded random sampler (no storage, no objective)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [space.suggest(study.ask()) for _ in range(n)]


def test_tunable_options_come_from_the_configs():
    options = tunable_options()
    assert {"maxlen", "val_split", "oov", "units", "dropout", "batch_size", "epochs", "lr", "rho", "epsilon"} <= set(options)
    assert not {"embedding_dims", "seed", "limit", "encoding_errors"} & set(options)
    assert (options["units"], options["lr"], options["oov"]) == (int, float, str)


def test_tunable_options_are_the_options_of_train_with_their_types():
    from loopynet.config import COMMAND_FIELDS

    train_options = {name for _, names in COMMAND_FIELDS["train"] for name in names}
    assert set(tunable_options()) == train_options - {"embedding_dims", "seed", "limit", "encoding_errors",
                                                      "vectors_errors", "vectors_member"}
    assert (tunable_options()["patience"], tunable_options()["lr"], tunable_options()["cell"],
            tunable_options()["bidirectional"]) == (int, float, str, bool)  # an optional field: its value's type
    assert parse("[patience]\nlow = 1\nhigh = 3\n").params["patience"].kind is int
    with pytest.raises(SpaceError, match=r"\[cell\]: a str option takes choices"):
        parse("[cell]\nlow = 1\nhigh = 3\n")


def test_int_range_with_step():
    space = parse("[maxlen]\nlow = 100\nhigh = 400\nstep = 50\n")
    assert space.params["maxlen"] == Param("maxlen", int, 100, 400, 50)
    values = {s["maxlen"] for s in suggestions(space)}
    assert values <= {100, 150, 200, 250, 300, 350, 400} and len(values) > 3
    assert all(isinstance(v, int) for v in values)


def test_float_range_accepts_int_bounds_and_log_scale():
    space = parse("[dropout]\nlow = 0\nhigh = 1\n[lr]\nlow = 1e-4\nhigh = 1e-2\nlog = true\n")
    assert space.params["dropout"] == Param("dropout", float, 0.0, 1.0)
    assert space.params["lr"].log
    drawn = suggestions(space, 50)
    assert all(1e-4 <= s["lr"] <= 1e-2 and 0 <= s["dropout"] <= 1 for s in drawn)
    assert sum(s["lr"] < 1e-3 for s in drawn) > 15  # log-uniform: about half below the geometric middle


def test_float_step():
    space = parse("[dropout]\nlow = 0.0\nhigh = 0.5\nstep = 0.1\n")
    assert {round(s["dropout"], 9) for s in suggestions(space)} <= {0.0, 0.1, 0.2, 0.3, 0.4, 0.5}


@pytest.mark.parametrize("text, name, expected", [
    ("[batch_size]\nchoices = [16, 32, 64]\n", "batch_size", (16, 32, 64)),
    ("[oov]\nchoices = ['drop', 'unk']\n", "oov", ("drop", "unk")),
    ("[dropout]\nchoices = [0, 0.5]\n", "dropout", (0.0, 0.5)),
])
def test_choices(text, name, expected):
    space = parse(text)
    assert space.params[name].choices == expected
    assert {s[name] for s in suggestions(space)} == set(expected)


def test_bool_choices_for_an_option_of_any_type(monkeypatch):
    """Future bool options (e.g. bidirectional) take boolean choices; checked against the type."""
    monkeypatch.setattr("loopynet.tune.space.tunable_options", lambda: {"bidirectional": bool, "units": int})
    space = parse("[bidirectional]\nchoices = [true, false]\n")
    assert {s["bidirectional"] for s in suggestions(space)} == {True, False}
    with pytest.raises(SpaceError, match=r"\[bidirectional\] choice must be a bool, not 1"):
        parse("[bidirectional]\nchoices = [true, 1]\n")
    with pytest.raises(SpaceError, match="takes choices, not a range"):
        parse("[bidirectional]\nlow = 0\nhigh = 1\n")


def test_plain_values_are_fixed_for_every_trial():
    space = parse("epochs = 2\nlr = 0.001\n[units]\nlow = 10\nhigh = 20\n")
    assert space.fixed == {"epochs": 2, "lr": 0.001}
    assert all(s["epochs"] == 2 and s["lr"] == 0.001 and 10 <= s["units"] <= 20 for s in suggestions(space))


def test_default_space_covers_the_chapter_list():
    space = load_space()
    assert load_space(DEFAULT_SPACE) == space
    assert {"maxlen", "batch_size", "epochs", "units", "dropout", "lr"} <= set(space.params)
    book = {"maxlen": 400, "batch_size": 32, "epochs": 2, "units": 50, "dropout": 0.2, "lr": 1e-3}
    for name, value in book.items():  # the book's configuration lies inside the default space
        p = space.params[name]
        assert value in p.choices if p.choices else p.low <= value <= p.high


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(SpaceError, match=r"unknown option 'neurons'; valid options: .*batch_size.*units"):
        parse("[neurons]\nlow = 1\nhigh = 2\n")
    with pytest.raises(SpaceError, match="unknown option 'seed'"):
        parse("[seed]\nchoices = [1, 2]\n")


@pytest.mark.parametrize("text, message", [
    ("[units]\nlow = 120\nhigh = 20\n", r"\[units\]: low 120 > high 20"),
    ("[units]\nlow = 20\n", r"\[units\]: missing high"),
    ("[units]\nstep = 2\n", r"\[units\]: missing high and low"),
    ("[lr]\nlow = 0\nhigh = 0.1\nlog = true\n", r"\[lr\]: log = true needs low > 0"),
    ("[lr]\nlow = -1.0\nhigh = 0.1\nlog = true\n", r"\[lr\]: log = true needs low > 0"),
    ("[batch_size]\nchoices = []\n", r"\[batch_size\]: choices must be a non-empty list"),
    ("[batch_size]\nchoices = 32\n", r"\[batch_size\]: choices must be a non-empty list"),
    ("[batch_size]\nchoices = [16, 'big']\n", r"\[batch_size\] choice must be an int, not 'big'"),
    ("[batch_size]\nchoices = [16]\nlow = 1\n", r"\[batch_size\]: choices cannot be combined with \['low'\]"),
    ("[units]\nlow = 20.5\nhigh = 40\n", r"\[units\] low must be an int, not 20.5"),
    ("[units]\nlow = true\nhigh = 40\n", r"\[units\] low must be an int, not True"),
    ("[units]\nlow = 20\nhigh = 40\nlog = 'yes'\n", r"\[units\]: log must be true or false"),
    ("[units]\nlow = 20\nhigh = 40\nstep = 0\n", r"\[units\]: step must be > 0"),
    ("[lr]\nlow = 1e-4\nhigh = 1e-2\nlog = true\nstep = 1e-4\n", r"\[lr\]: .*cannot be combined with log"),
    ("[units]\nlo = 20\nhigh = 40\n", r"\[units\]: unknown keys \['lo'\]"),
    ("[oov]\nlow = 1\nhigh = 2\n", r"\[oov\]: a str option takes choices, not a range"),
    ("epochs = 'two'\n[units]\nlow = 1\nhigh = 2\n", r"epochs must be an int, not 'two'"),
    ("epochs = 2\n", r"searches nothing"),
])
def test_malformed_entries_name_the_option(text, message):
    with pytest.raises(SpaceError, match=message):
        parse(text)


def test_load_space_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[units\nlow = 1\n", encoding="utf-8")
    with pytest.raises(SpaceError, match="bad.toml: not valid TOML"):
        load_space(bad)
    bad.write_bytes(b"[units]\nlow = 1 # \xff\n")
    with pytest.raises(SpaceError, match=r"bad.toml: not valid UTF-8 at byte 18"):
        load_space(bad)
    with pytest.raises(OSError):
        load_space(tmp_path / "missing.toml")
    assert issubclass(SpaceError, ValueError)  # the CLI reports it as one line (exit 2)
