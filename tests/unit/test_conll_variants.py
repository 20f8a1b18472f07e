"""CoNLL files as people have them: IOB1 / IOB2 / IOBES tags, tabs or runs of spaces, -DOCSTART- anywhere."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopynet.data.conll import ConllError, counts, detect_scheme, read_conll, read_tagged
from loopynet.data.text import BOM

# IOB1 (the original CoNLL-2003 release): I- starts an entity, B- only right after one of the same type
IOB1_EXAMPLE = """-DOCSTART- -X- O O

U.N. NNP I-NP I-ORG
official NN I-NP O
Ekeus NNP I-NP I-PER
heads VBZ I-VP O
for IN I-PP O
Paris NNP I-NP I-LOC
Berlin NNP I-NP B-LOC
. . O O
"""


def write(tmp_path, text: str, name: str = "train.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_iob1_is_detected_said_and_counted_right(tmp_path):
    write(tmp_path, IOB1_EXAMPLE)
    sentences, note = read_tagged(tmp_path, "train")
    assert note == "train.txt: tags read as IOB1 (--input-scheme auto; I-ORG after a sentence start at line 3)"
    assert sentences[0].tags == ["B-ORG", "O", "B-PER", "O", "O", "B-LOC", "B-LOC", "O"]
    assert counts(sentences)["entities"] == {"LOC": 2, "ORG": 1, "PER": 1}
    as_iob2, note = read_tagged(tmp_path, "train", "iob2")  # what reading it as IOB2 counted before
    assert counts(as_iob2)["entities"] == {"LOC": 1} and note == "train.txt: tags read as IOB2 (--input-scheme iob2)"


def test_iobes_input_is_converted_and_iob2_refuses_its_tags(tmp_path):
    write(tmp_path, "Angela x x B-PER\nMerkel x x E-PER\nin x x O\nParis x x S-LOC\n")
    sentences, note = read_tagged(tmp_path, "train")
    assert sentences[0].tags == ["B-PER", "I-PER", "O", "B-LOC"] and "IOBES (--input-scheme auto; E-PER at line 2)" in note
    with pytest.raises(ConllError, match=r"train\.txt:2: tag E-PER is not IOB2; use --input-scheme iobes"):
        read_tagged(tmp_path, "train", "iob2")


def test_tabs_runs_of_spaces_and_docstart_anywhere(tmp_path):
    path = write(tmp_path, "New York\tNNP\tB-NP\tB-LOC\nis  VBZ   B-VP O\n-DOCSTART-\t-X-\t-X-\tO\nEU NNP B-NP B-ORG\n"
                           "\n\n-DOCSTART- -X- -X- O\nrejects VBZ B-VP O\n")
    assert [(s.tokens, s.tags, s.line) for s in read_conll(path)] == [
        (["New York", "is"], ["B-LOC", "O"], 1), (["EU"], ["B-ORG"], 4), (["rejects"], ["O"], 8)]


ENTITY_TYPES = ["PER", "LOC", "ORG"]
SPANS = st.lists(st.tuples(st.integers(0, 2), st.sampled_from(ENTITY_TYPES), st.integers(1, 3)), max_size=6)


def _encode(spans, scheme: str) -> tuple[list[str], list[str]]:
    """Tokens and tags of `spans` (gap before, type, length) in `scheme`; IOB2 tags too."""
    tags2, tags, prev_type = [], [], None
    for gap, kind, length in spans:
        tags2 += ["O"] * gap
        tags += ["O"] * gap
        if gap:
            prev_type = None
        tags2 += [f"B-{kind}"] + [f"I-{kind}"] * (length - 1)
        if scheme == "iob1":
            tags += [f"{'B' if prev_type == kind else 'I'}-{kind}"] + [f"I-{kind}"] * (length - 1)
        elif scheme == "iobes":
            tags += [f"S-{kind}"] if length == 1 else [f"B-{kind}"] + [f"I-{kind}"] * (length - 2) + [f"E-{kind}"]
        else:
            tags += tags2[len(tags):]
        prev_type = kind
    tags2, tags = tags2 or ["O"], tags or ["O"]
    return [f"w{i}" for i in range(len(tags))], tags, tags2


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sentences=st.lists(SPANS, min_size=1, max_size=5), scheme=st.sampled_from(["iob1", "iob2", "iobes"]),
       separator=st.sampled_from([" ", "\t", "   "]), docstarts=st.lists(st.booleans(), min_size=5, max_size=5),
       bom=st.booleans())
def test_any_tagging_in_any_scheme_and_layout_reads_back_as_its_iob2_tags(tmp_path, sentences, scheme, separator,
                                                                          docstarts, bom):
    encoded = [_encode(spans, scheme) for spans in sentences]
    lines = []
    for (tokens, tags, _), docstart in zip(encoded, docstarts):
        if docstart:
            lines += [separator.join(["-DOCSTART-", "-X-", "-X-", "O"])]
        lines += [separator.join([tok, "NN", "O", tag]) for tok, tag in zip(tokens, tags)] + [""]
    path = tmp_path / "train.txt"
    path.write_bytes((BOM if bom else b"") + "\n".join(lines).encode())
    read, note = read_tagged(tmp_path, "train")
    assert [(s.tokens, s.tags) for s in read] == [(tokens, tags2) for tokens, _, tags2 in encoded]
    detected = detect_scheme(read_conll(path))[0]
    all_tags = [t for _, tags, _ in encoded for t in tags]
    if scheme == "iobes" and any(t[:2] in ("E-", "S-") for t in all_tags):
        assert detected == "iobes"
    elif scheme == "iob1" and any(t.startswith("I-") for t in all_tags):
        assert detected == "iob1"
    elif scheme == "iob2":
        assert detected == "iob2"
