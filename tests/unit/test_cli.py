"""The command line on tiny data: train, evaluate, predict, summary, and clear errors (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from loopynet.cli import main
from tests.conftest import CLI_TRAIN as TRAIN


def test_train_prints_epochs_and_saves(cli_model_dir, capsys):
    assert (cli_model_dir / "model.safetensors").is_file()
    history = json.loads((cli_model_dir / "history.json").read_text())
    assert len(history) == 3 and history[-1]["val_accuracy"] >= 0.9


def test_evaluate_json_has_the_metric_names(cli_model_dir, tiny_imdb, capsys):
    assert main(["evaluate", str(cli_model_dir), "--data", str(tiny_imdb), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"accuracy", "precision", "recall", "f1", "confusion_matrix", "loss"} <= metrics.keys()
    assert metrics["support"] == 40 and metrics["split"] == "test"


def test_evaluate_table(cli_model_dir, tiny_imdb, capsys):
    assert main(["evaluate", str(cli_model_dir), "--data", str(tiny_imdb)]) == 0
    out = capsys.readouterr().out
    assert "test split, 40 documents" in out and "accuracy:" in out and "confusion matrix" in out


def test_predict_arguments_json(cli_model_dir, capsys):
    assert main(["predict", str(cli_model_dir), "great wonderful superb", "awful dreadful boring", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in results] == ["pos", "neg"]
    assert set(results[0]) == {"text", "probability", "label", "tokens", "known_tokens"}
    assert 0.5 < results[0]["probability"] <= 1 and results[0]["tokens"] == results[0]["known_tokens"] == 3


def test_predict_from_file_and_stdin(cli_model_dir, tmp_path, capsys, monkeypatch):
    texts = tmp_path / "texts.txt"
    texts.write_text("great loved it\n\nawful hated it\n", encoding="utf-8")
    assert main(["predict", str(cli_model_dir), "--file", str(texts), "--json"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    assert [r["text"] for r in from_file] == ["great loved it", "", "awful hated it"]
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"great loved it\n")))
    assert main(["predict", str(cli_model_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["probability"] == from_file[0]["probability"]


def test_predict_file_that_is_not_utf8_names_file_line_and_byte(cli_model_dir, tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_bytes("great loved it\nawful \xff hated\n".encode("latin-1"))
    assert main(["predict", str(cli_model_dir), "--file", str(texts)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing predicted from a half-read file
    assert f"{texts}:2: not valid UTF-8 at byte 6 of the line" in captured.err


def test_predict_threshold(cli_model_dir, capsys):
    assert main(["predict", str(cli_model_dir), "great wonderful", "--threshold", "1.0"]) == 0
    assert capsys.readouterr().out.startswith("neg\t")


def test_summary_of_settings_and_of_a_folder(cli_model_dir, capsys):
    assert main(["summary", "--units", "100"]) == 0
    assert "Total params: 80,101" in capsys.readouterr().out
    assert main(["summary", str(cli_model_dir)]) == 0
    assert "(None, 12, 6)" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["evaluate", "/nonexistent/model", "--data", "."], "model folder /nonexistent/model does not exist"),
    (["train", "--data", "/nope", "--vectors", "x.bin", "--out", "o"], "--vectors x.bin: no such file"),
    (["predict", "/nonexistent/model", "x"], "does not exist"),
])
def test_bad_input_exits_2_with_one_clear_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_vectors_file(tiny_imdb, tmp_path, capsys):
    code = main(["train", "--data", str(tiny_imdb), "--vectors", str(tmp_path / "none.bin"), "--out", str(tmp_path / "o")])
    assert code == 2 and "none.bin: no such file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_bad_sif_a_exits_2_and_writes_nothing(tiny_imdb, tiny_vectors, tmp_path, capsys):
    out = tmp_path / "o"
    code = main(["train", "--data", str(tiny_imdb), "--vectors", str(tiny_vectors), "--out", str(out), *TRAIN,
                 "--sif-a", "0"])
    assert code == 2 and "sif_a must be > 0, got 0.0" in capsys.readouterr().err
    assert not out.exists()


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "loopynet.cli", "summary"], capture_output=True, text=True, check=True)
    assert "Total params: 37,551" in result.stdout


def test_predict_texts_after_options(cli_model_dir, capsys):
    assert main(["predict", str(cli_model_dir), "--json", "great wonderful", "awful boring"]) == 0
    assert [r["label"] for r in json.loads(capsys.readouterr().out)] == ["pos", "neg"]
    with pytest.raises(SystemExit):
        main(["predict", str(cli_model_dir), "--json", "text", "--bogus"])


def test_training_schedule_flags_reach_the_saved_config(tiny_imdb, tiny_vectors, tmp_path):
    out = tmp_path / "m"
    assert main(["train", "--data", str(tiny_imdb), "--vectors", str(tiny_vectors), "--out", str(out), *TRAIN,
                 "--lr-decay", "0.5", "--ema-decay", "0.9", "--no-strip-html", "--vector-norm", "none",
                 "--rho", "0.8", "--epsilon", "1e-6", "--threads", "1"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["lr_decay"] == 0.5 and config["train"]["ema_decay"] == 0.9
    assert config["train"]["rho"] == 0.8 and config["train"]["epsilon"] == 1e-6
    assert config["data"]["strip_html"] is False and config["data"]["vector_norm"] == "none"
    assert config["data"]["split_periods"] is True  # the other clean-ups stay at their default
