"""The data report names the documents that became empty and why; predict says how many tokens it knew."""

from __future__ import annotations

import json

import numpy as np

from loopynet.cli import main
from tests.conftest import write_split


def test_predict_json_counts_known_tokens_and_warns_on_none(cli_model_dir, capsys):
    assert main(["predict", str(cli_model_dir), "great movie zzzz", "qqq zzzz xxxx yyyy", "", "--json"]) == 0
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert [(r["tokens"], r["known_tokens"]) for r in results] == [(3, 2), (4, 0), (0, 0)]
    assert results[1]["probability"] == results[2]["probability"]  # no known token = an empty text
    assert captured.err.splitlines() == [
        "loopynet predict: warning: text 2 has no token with a vector in the model's vocabulary (4 tokens): its "
        "probability is the model's answer to an empty text",
        "loopynet predict: warning: text 3 has no token with a vector in the model's vocabulary (0 tokens): its "
        "probability is the model's answer to an empty text"]


def test_the_data_report_names_empty_documents_and_their_reason(tiny_vectors, tmp_path, capsys):
    data = write_split(tmp_path / "train", 30, seed=5)
    (data / "neg" / "blank.txt").write_text("  \n", encoding="utf-8")
    (data / "pos" / "foreign.txt").write_text("zzzz qqqq", encoding="utf-8")
    out = tmp_path / "model"
    assert main(["train", "--data", str(data), "--vectors", str(tiny_vectors), "--out", str(out), "--val-split", "0",
                 "--maxlen", "12", "--units", "4", "--epochs", "0", "--quiet"]) == 0
    # 60 reviews of 11 tokens, one of them 'unknownword' (conftest.make_review), + 0 + 2 tokens without a vector
    assert ("train: 62 documents, 662 tokens, OOV 62 (9.37%), 2 empty (1 no tokens, 1 no token with a vector: "
            "neg/blank.txt, pos/foreign.txt)") in capsys.readouterr().err
    report = json.loads((out / "data_report.json").read_text())["train"]
    assert report["empty_reasons"] == {"no tokens": 1, "no token with a vector": 1}
    assert sorted(report["empty_files"]) == ["neg/blank.txt", "pos/foreign.txt"]


def test_a_limit_that_leaves_one_class_says_so(tiny_imdb, tiny_vectors, tmp_path, capsys):
    order = np.random.default_rng(0).permutation(120)[:2]  # the seeded shuffle's first two of 60 neg + 60 pos
    assert (order < 60).all() or (order >= 60).all(), "seed 0 should pick one class for the first 2 documents"
    assert main(["train", "--data", str(tiny_imdb), "--vectors", str(tiny_vectors), "--out", str(tmp_path / "o"),
                 "--limit", "2", "--val-split", "0.5", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "the training part holds one class only (" in err and "1 documents, after --limit 2 and --val-split 0.5)" in err
    assert "use a larger --limit" in err and not (tmp_path / "o").exists()
