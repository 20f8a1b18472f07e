"""Bad input found by a new-user audit (stop 10): each gives exit 2 and one clear line, before any
work where it can, and never damages an existing file or folder."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
from conftest import write_split, write_word2vec

from loopynet.cli import main
from loopynet.data.conll import ConllError, read_split

TRAIN = ["--maxlen", "12", "--units", "6", "--epochs", "1", "--batch-size", "8", "--quiet"]


def train(data, vectors, out, *extra) -> int:
    return main(["train", "--data", str(data), "--vectors", str(vectors), "--out", str(out), *TRAIN, *extra])


@pytest.fixture(scope="module")
def model_dir(tiny_imdb, tiny_vectors, tmp_path_factory):
    out = tmp_path_factory.mktemp("bad") / "model"
    assert train(tiny_imdb, tiny_vectors, out) == 0
    return out


def damaged_copy(model_dir, tmp_path, edit) -> str:
    """A copy of the model folder with config.json passed through `edit` (a dict -> JSON value function)."""
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in model_dir.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(edit(config)))
    return str(copy)


def one_line_error(capsys, *fragments: str) -> str:
    """The one 'loopynet COMMAND: ...' line of stderr (data report lines may come before it)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("loopynet ")]
    assert "Traceback" not in err and len(lines) == 1 and err.rstrip().endswith(lines[0]), err
    for fragment in fragments:
        assert fragment in lines[0], err
    return lines[0]


def test_out_that_is_a_folder_of_other_files_is_refused_before_training(tiny_imdb, tiny_vectors, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("important")
    assert train(tiny_imdb, tiny_vectors, out) == 2
    one_line_error(capsys, f"--out {out} exists and is a folder that is not a loopynet model folder")
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "important"
    assert not (tmp_path / "mine.checkpoint").exists()  # refused before any training


def test_out_that_is_a_file_or_the_data_itself_is_refused(tiny_imdb, tiny_vectors, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    assert train(tiny_imdb, tiny_vectors, afile) == 2
    one_line_error(capsys, "exists and is a file; refusing to replace it")
    assert afile.read_text() == "keep me"
    assert train(tiny_imdb, tiny_vectors, tiny_imdb) == 2
    one_line_error(capsys, "refusing to replace it")
    assert (tiny_imdb / "train" / "pos").is_dir()


def test_out_that_is_the_working_folder_is_refused(tiny_imdb, tiny_vectors, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert train(tiny_imdb, tiny_vectors, ".") == 2
    one_line_error(capsys, "is the working folder or contains it")


def test_empty_folder_and_model_folder_may_be_out(tiny_imdb, tiny_vectors, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert train(tiny_imdb, tiny_vectors, empty) == 0
    assert train(tiny_imdb, tiny_vectors, empty, "--seed", "1") == 0  # now a model folder: replaced
    assert json.loads((empty / "config.json").read_text())["train"]["seed"] == 1


def test_saved_files_get_the_umask_mode_not_0600(model_dir):
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(model_dir.stat().st_mode) == 0o777 & ~mask
    for name in ("config.json", "model.safetensors", "vocab.json"):
        assert stat.S_IMODE((model_dir / name).stat().st_mode) == 0o666 & ~mask, name


@pytest.mark.parametrize("flag, value, message", [
    ("--maxlen", "0", "maxlen must be >= 1 token"),
    ("--val-split", "1.5", "val_split must be in [0, 1)"),
    ("--val-split", "1", "val_split must be in [0, 1)"),
    ("--limit", "1", "limit must be >= 2 documents"),
    ("--batch-size", "0", "batch_size must be >= 1"),
    ("--epochs", "-1", "epochs must be >= 0"),
    ("--clip-norm", "-1", "clip_norm must be > 0"),
    ("--rho", "2", "rho (RMSprop's decay) must be in [0, 1)"),
    ("--lr-decay", "nan", "lr_decay must be >= 0"),
    ("--threads", "0", "--threads must be 1 to 256"),
    ("--threads", "100000", "--threads must be 1 to 256"),
    ("--word-dropout", "1", "word_dropout must be in [0, 1)"),
    ("--train-words-min-count", "-1", "train_words_min_count must be >= 0"),
    ("--train-words-min-count", "2", "train_words_min_count 2 gives words without a vector rows that start at zero "
                                     "and only --train-embeddings trains"),
])
def test_out_of_range_settings_stop_before_any_work(flag, value, message, tiny_imdb, tiny_vectors, tmp_path, capsys):
    assert train(tiny_imdb, tiny_vectors, tmp_path / "o", flag, value) == 2
    one_line_error(capsys, message)
    assert list(tmp_path.iterdir()) == []


def test_no_training_document_left(tiny_imdb, tiny_vectors, tmp_path, capsys):
    assert train(tiny_imdb, tiny_vectors, tmp_path / "o", "--limit", "2", "--val-split", "0.6") == 2
    one_line_error(capsys, "no training document left (2 documents, val_split 0.6)")


def test_three_classes_are_refused_by_the_binary_model(tiny_vectors, tmp_path, capsys):
    data = write_split(tmp_path / "three", 4, seed=0, classes=("neg", "neutral", "pos"))
    assert train(data, tiny_vectors, tmp_path / "o") == 2
    one_line_error(capsys, "has 3 classes ['neg', 'neutral', 'pos']", "needs exactly 2 class folders")


def test_vectors_without_dimensions_or_without_corpus_words(tiny_imdb, tmp_path, capsys):
    words_only = tmp_path / "words.txt"
    words_only.write_text("hello\nworld\n")
    assert train(tiny_imdb, words_only, tmp_path / "o") == 2
    one_line_error(capsys, "line 1 is neither a word2vec header 'COUNT DIMS' nor a GloVe row", "(found 'hello')")
    foreign = write_word2vec(tmp_path / "foreign.bin", ["zebra", "quokka"], np.ones((2, 4)))
    assert train(tiny_imdb, foreign, tmp_path / "o") == 2
    one_line_error(capsys, "no token of the", "has a vector in --vectors foreign.bin")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value", ["2", "nan", "abc"])
def test_threshold_must_be_a_probability_one_line(model_dir, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(model_dir), "fine", "--threshold", value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1, err  # argparse's usage block is not printed
    assert err.startswith("loopynet predict: error: argument --threshold: must be a probability in [0, 1]")


def test_summary_of_impossible_settings(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["summary", "--units", "0"])
    assert exit_.value.code == 2
    one_line_error(capsys, "loopynet summary: error: argument --units: must be an integer >= 1, got 0")
    assert main(["summary", "--embedding-dims", "1", "--units", "1", "--maxlen", "1"]) == 0


@pytest.mark.parametrize("edit, message", [
    (lambda c: {**c, "model": {**c["model"], "units": "fifty"}}, "config.json is not a valid loopynet classifier config"),
    (lambda c: {k: v for k, v in c.items() if k != "class_names"}, "needs class_names, a list of 2 names"),
    (lambda c: {**c, "class_names": []}, "needs class_names, a list of 2 names"),
    (lambda c: {**c, "kind": "tagger"}, "holds a 'tagger' model, not a classifier"),
    (lambda c: [c], "config.json must hold an object"),
])
def test_damaged_config_json(model_dir, tmp_path, edit, message, capsys):
    assert main(["predict", damaged_copy(model_dir, tmp_path, edit), "fine"]) == 2
    one_line_error(capsys, message)


def test_truncated_weights_file(model_dir, tmp_path, capsys):
    copy = damaged_copy(model_dir, tmp_path, lambda c: c)
    weights = tmp_path / "copy" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])
    for command in (["predict", copy, "fine"], ["summary", copy]):
        assert main(command) == 2
        one_line_error(capsys, "model.safetensors has 40 bytes", "truncated")


def test_resume_from_a_damaged_or_foreign_checkpoint(tiny_imdb, tiny_vectors, tmp_path, capsys):
    out = tmp_path / "m"
    assert train(tiny_imdb, tiny_vectors, out) == 0
    assert train(tiny_imdb, tiny_vectors, out, "--epochs", "2", "--units", "7", "--resume") == 2
    one_line_error(capsys, "written with other settings (model.units: checkpoint 6, now 7)", "remove the checkpoint folder")
    checkpoint = tmp_path / "m.checkpoint" / "last.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    assert train(tiny_imdb, tiny_vectors, out, "--epochs", "2", "--resume") == 2
    one_line_error(capsys, "last.pt is unreadable")
    assert (out / "model.safetensors").is_file()  # the saved model is untouched


def test_empty_conll_split(tmp_path):
    (tmp_path / "train.txt").write_text("-DOCSTART- -X- -X- O\n\n")
    with pytest.raises(ConllError, match="no sentence"):
        read_split(tmp_path, "train")


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys):
    from loopynet import cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "summary", interrupted)
    assert main(["summary"]) == 130
    one_line_error(capsys, "loopynet summary: interrupted")


def test_predict_with_no_text_says_so_and_exits_2(model_dir, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(["predict", str(model_dir), "--file", str(empty), "--json"]) == 2
    assert one_line_error(capsys, "no text given") == ("loopynet predict: error: no text given (as arguments, with "
                                                       "--file, or on stdin)")
    (tmp_path / "blank.txt").write_text("\n")  # one empty line is one (empty) text
    assert main(["predict", str(model_dir), "--file", str(tmp_path / "blank.txt"), "--json"]) == 0
    assert [r["text"] for r in json.loads(capsys.readouterr().out)] == [""]


def test_a_bug_keeps_its_traceback_and_asks_for_a_report(monkeypatch, capsys):
    from loopynet import cli

    def broken(args):
        return {}["missing"]  # a KeyError: no user error

    monkeypatch.setitem(cli.COMMANDS, "summary", broken)
    assert main(["summary"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError: 'missing'" in err
    assert err.rstrip().splitlines()[-1].startswith("loopynet summary: this is a bug in loopynet")


def test_a_user_error_is_one_line_but_a_plain_value_error_is_a_bug(monkeypatch, capsys):
    from loopynet import cli
    from loopynet.errors import InputError

    def bad_input(args):
        raise InputError("the input is wrong")

    monkeypatch.setitem(cli.COMMANDS, "summary", bad_input)
    assert main(["summary"]) == 2
    assert one_line_error(capsys) == "loopynet summary: error: the input is wrong"

    def internal(args):
        raise ValueError("an internal check failed")

    monkeypatch.setitem(cli.COMMANDS, "summary", internal)
    assert main(["summary"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_a_missing_file_is_one_line(model_dir, tmp_path, capsys):
    assert main(["predict", str(model_dir), "--file", str(tmp_path / "nowhere.txt")]) == 2
    one_line_error(capsys, "nowhere.txt: No such file or directory")


@pytest.mark.parametrize("argv, prog", [
    (["train", "--data", "d", "--vectors", "v", "--out", "o", "--epohcs", "1"], "loopynet train"),
    (["tag", "train", "--data", "d", "--vectors", "v", "--out", "o", "--epohcs", "1"], "loopynet tag train"),
    (["diagnose", "gradients", "--data", "d", "--vectors", "v", "--bogus"], "loopynet diagnose gradients"),
])
def test_usage_errors_name_the_subcommand(argv, prog, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith(f"{prog}: error: unrecognized arguments: ")


@pytest.mark.parametrize("argv", [
    ["train", "--data", "d", "--vectors", "v", "--out", "o", "--epoch", "1"],  # a prefix of --epochs
    ["evaluate", "m", "--data", "d", "--thresh", "0.4"],
])
def test_option_prefixes_are_not_accepted(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err


def test_summary_of_a_folder_refuses_the_settings_flags(model_dir, capsys):
    assert main(["summary", str(model_dir), "--units", "100"]) == 2
    one_line_error(capsys, "--units apply only without a model folder")


def test_a_folder_that_is_not_a_model_says_so(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["predict", str(tmp_path), "hello"]) == 2
    one_line_error(capsys, f"{tmp_path} is not a loopynet model folder")


# --- second audit: the Python API, diagnose, curves, tag predict --------------------------------------


def test_api_predict_wants_a_list_of_strings(model_dir):
    from loopynet import Classifier

    clf = Classifier.load(model_dir)
    with pytest.raises(TypeError, match=r"not one string: pass \[text\]"):
        clf.predict("great movie")
    with pytest.raises(TypeError, match=r"texts\[1\] must be a string, not int"):
        clf.predict(["fine", 3])
    from_generator = clf.predict(t for t in ["great wonderful", "awful dreadful"])
    assert [r["probability"] for r in from_generator] == [r["probability"] for r in clf.predict(["great wonderful", "awful dreadful"])]
    for bad in (2, float("nan"), "0.5"):
        with pytest.raises(ValueError, match="threshold must be a probability in"):
            clf.predict(["fine"], threshold=bad)


def test_api_evaluate_limit_and_threshold(model_dir, tiny_imdb):
    from loopynet import Classifier

    clf = Classifier.load(model_dir)
    with pytest.raises(ValueError, match="limit must be >= 1 document"):
        clf.evaluate(tiny_imdb, limit=0)
    with pytest.raises(ValueError, match="threshold must be a probability"):
        clf.evaluate(tiny_imdb, threshold=5)
    assert clf.evaluate(tiny_imdb, limit=10)["support"] == 10


def test_api_train_checks_config_order_and_types(tiny_imdb, tiny_vectors):
    from loopynet import Classifier, ModelConfig, TrainConfig
    from loopynet.config import ConfigError

    with pytest.raises(TypeError, match="expected a DataConfig .* where a ModelConfig was given"):
        Classifier.train(tiny_imdb, tiny_vectors, ModelConfig())
    for bad, message in (({"epochs": "1"}, "TrainConfig.epochs must be int, got '1'"),
                         ({"batch_size": 2.5}, "TrainConfig.batch_size must be int, got 2.5")):
        with pytest.raises(ConfigError, match=message):
            Classifier.train(tiny_imdb, tiny_vectors, train_config=TrainConfig(**bad))


@pytest.mark.parametrize("field, value, message", [
    ("units", 0, "units must be >= 1"), ("dropout", 2.0, r"dropout must be in \[0, 1\)"),
    ("cell", "transformer", "cell must be one of"),
    ("train_embeddings_dims", -1, r"train_embeddings_dims must be >= 0 \(0 = all dimensions\)"),
])
def test_tagger_config_ranges(field, value, message):
    from loopynet.config import ConfigError
    from loopynet.config import TaggerConfig
    from loopynet.models.tagger import SequenceTagger

    with pytest.raises(ConfigError, match=message):
        SequenceTagger(TaggerConfig(**{field: value}))


def test_diagnose_checks_counts_and_out_before_reading_anything(tmp_path, capsys):
    from loopynet.config import ConfigError
    from loopynet.inspect.gradients import diagnose

    afile = tmp_path / "afile"
    afile.write_text("keep")
    with pytest.raises(ConfigError, match="--out .* is a file"):
        diagnose("/no/data", "/no/vectors", ["rnn"], afile)  # would be a CorpusError had it read the data
    with pytest.raises(ConfigError, match="batches must be >= 1, got 0"):
        diagnose("/no/data", "/no/vectors", ["rnn"], tmp_path / "o", batches=0)
    assert afile.read_text() == "keep"
    with pytest.raises(SystemExit):
        main(["diagnose", "gradients", "--data", "x", "--vectors", "y", "--batch-size", "0"])
    assert "argument --batch-size: must be an integer >= 1, got 0" in capsys.readouterr().err


def test_learning_curve_script(model_dir, tmp_path, capsys):
    from loopynet.inspect.curves import main as curves

    assert curves([str(tmp_path / "nope"), str(tmp_path / "c.png")]) == 2
    err = capsys.readouterr().err
    assert f"error: model folder {tmp_path / 'nope'} does not exist" in err and "Traceback" not in err
    out = tmp_path / "curve"  # no suffix: still a PNG, at exactly that path
    assert curves([str(model_dir), str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and capsys.readouterr().out.strip() == str(out)


def test_negative_limits_and_seeds_are_refused_by_the_cli(model_dir, capsys):
    for argv in (["evaluate", str(model_dir), "--data", "x", "--limit", "0"],
                 ["train", "--data", "x", "--vectors", "y", "--out", "z", "--seed", "-1"],
                 ["tag", "evaluate", "m", "--limit", "-1"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2 and "must be an integer >=" in capsys.readouterr().err
