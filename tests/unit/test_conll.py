"""The CoNLL-2003 column reader: format edge cases and clear errors (the real files: tests/integration)."""

from __future__ import annotations

import pytest

from loopynet.data.conll import ConllError, counts, iob2_tag, read_conll, read_split, split_path, to_iobes, with_scheme

GOOD = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER


-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
"""


def write(tmp_path, text: str, name="x.txt", mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def test_sentences_docstart_repeated_blanks_and_no_final_blank(tmp_path):
    sents = read_conll(write(tmp_path, GOOD))
    assert [s.tokens for s in sents] == [["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn"], ["BRUSSELS"]]
    assert sents[0].tags == ["B-ORG", "O", "B-MISC", "O", "O"]
    assert sents[0].pos[0] == "NNP" and sents[1].chunks == ["B-NP", "I-NP"]
    assert counts(sents)["entities"] == {"LOC": 1, "MISC": 1, "ORG": 1, "PER": 1}


def test_crlf_tabs_and_docstart_without_blank_line(tmp_path):
    text = "-DOCSTART- -X- -X- O\r\nA\tDT\tB-NP\tO\r\nParis NNP B-NP B-LOC\r\n-DOCSTART- -X- -X- O\r\nB NNP B-NP B-PER\r\n"
    sents = read_conll(write(tmp_path, text))
    assert [s.tokens for s in sents] == [["A", "Paris"], ["B"]]
    assert sents[0].tags == ["O", "B-LOC"]


def test_empty_file_has_no_sentences(tmp_path):
    assert read_conll(write(tmp_path, "")) == []
    assert read_conll(write(tmp_path, "-DOCSTART- -X- -X- O\n\n\n", "y.txt")) == []


@pytest.mark.parametrize("line, what", [("EU NNP B-ORG", "expected 4 columns"), ("EU NNP B-NP B-ORG extra", "found 5"),
                                        ("EU NNP B-NP ORG", "NER tag 'ORG'"), ("EU NNP B-NP B-", "NER tag 'B-'")])
def test_malformed_line_names_file_and_line(tmp_path, line, what):
    path = write(tmp_path, f"A DT B-NP O\n\nB DT B-NP O\n{line}\n")
    with pytest.raises(ConllError) as err:
        read_conll(path)
    assert f"{path}:4:" in str(err.value) and what in str(err.value)


def test_not_utf8_and_missing_file(tmp_path):
    path = write(tmp_path, b"A DT B-NP O\n\xff\xfe DT B-NP O\n", mode="wb")
    with pytest.raises(ConllError, match=r"x.txt:2: not UTF-8"):
        read_conll(path)
    with pytest.raises(ConllError, match="no such file"):
        read_conll(tmp_path / "missing.txt")
    with pytest.raises(ConllError, match="no such folder"):
        read_split(tmp_path / "nowhere", "train")
    with pytest.raises(ConllError, match="no test.txt"):
        read_split(tmp_path, "test")
    with pytest.raises(ConllError, match="unknown split"):
        split_path(tmp_path, "bogus")


def test_iobes_conversion_is_lossless_and_marks_single_and_last_tokens():
    tags = ["B-PER", "I-PER", "O", "B-LOC", "I-ORG", "B-MISC", "B-MISC", "I-MISC", "I-MISC", "O"]
    iobes = to_iobes(tags)
    assert iobes == ["B-PER", "E-PER", "O", "S-LOC", "E-ORG", "S-MISC", "B-MISC", "I-MISC", "E-MISC", "O"]
    assert [iob2_tag(t) for t in iobes] == tags
    assert to_iobes([]) == [] and iob2_tag("O") == "O"
    with pytest.raises(ValueError, match="tag_scheme must be one of"):
        with_scheme([], "bilou")
