"""A UTF-8 byte-order mark is dropped wherever text enters: same tokens, same numbers as without it."""

from __future__ import annotations

import io
import json
import sys

import pytest

from loopynet.cli import main
from loopynet.data.conll import read_conll
from loopynet.data.corpus import CorpusError, read_corpus
from loopynet.data.text import BOM, decode_utf8
from loopynet.data.tokenize import DEFAULT, tokenize

REVIEW = "great wonderful movie , loved it ."


def test_decode_drops_the_bom_and_counts_it_in_error_offsets():
    assert decode_utf8(BOM + b"caf\xc3\xa9") == "café"
    assert decode_utf8(b"\xef\xbb\xbf") == ""
    with pytest.raises(UnicodeDecodeError) as err:
        decode_utf8(BOM + b"ab\xff")
    assert err.value.start == 5  # byte 5 of the file: the 3 BOM bytes count


def test_tokens_are_the_same_with_and_without_a_bom():
    assert tokenize("\ufeff" + REVIEW, DEFAULT) == tokenize(REVIEW, DEFAULT) == ["great", "wonderful", "movie", ",",
                                                                               "loved", "it", "."]


def test_review_files_with_a_bom_read_as_without(tmp_path):
    for root, bom in ((tmp_path / "plain", b""), (tmp_path / "bom", BOM)):
        for name in ("neg", "pos"):
            (root / name).mkdir(parents=True)
            (root / name / "1.txt").write_bytes(bom + f"{name} review".encode())
    assert read_corpus(tmp_path / "bom").texts == read_corpus(tmp_path / "plain").texts == ["neg review", "pos review"]
    (tmp_path / "bom" / "pos" / "2.txt").write_bytes(BOM + b"ok \xff")
    with pytest.raises(CorpusError, match=r"2\.txt: not valid UTF-8 at byte 6"):
        read_corpus(tmp_path / "bom")


def test_conll_bom_is_not_an_extra_sentence(tmp_path):
    text = "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n"
    plain, bom = tmp_path / "plain.txt", tmp_path / "bom.txt"
    plain.write_text(text, encoding="utf-8")
    bom.write_bytes(BOM + text.encode())
    assert read_conll(bom) == read_conll(plain)
    assert [s.tokens for s in read_conll(bom)] == [["EU", "rejects"], ["Peter"]]


def _predict(capsys, argv) -> list[dict]:
    assert main(["predict", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_predictions_are_identical_with_a_bom_in_arguments_file_and_stdin(cli_model_dir, tmp_path, capsys, monkeypatch):
    plain = _predict(capsys, [str(cli_model_dir), REVIEW])
    assert _predict(capsys, [str(cli_model_dir), "\ufeff" + REVIEW]) == plain
    texts = tmp_path / "texts.txt"
    texts.write_bytes(BOM + REVIEW.encode() + b"\n")
    assert _predict(capsys, [str(cli_model_dir), "--file", str(texts)]) == plain
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(BOM + REVIEW.encode() + b"\n")))
    assert _predict(capsys, [str(cli_model_dir)]) == plain
    assert plain[0]["text"] == REVIEW and 0 < plain[0]["probability"] < 1
