"""The real CoNLL-2003 files (../shared/data/conll2003): the published counts, and IOBES round-trips."""

from __future__ import annotations

import pytest

from loopynet.data.conll import counts, iob2_tag, read_split, read_tagged, to_iobes
from tests.conftest import SHARED_DATA

CONLL = SHARED_DATA / "conll2003"


@pytest.mark.parametrize("split, sentences, tokens, entities", [
    ("train", 14041, 203621, {"LOC": 7140, "MISC": 3438, "ORG": 6321, "PER": 6600}),
    ("valid", 3250, 51362, {"LOC": 1837, "MISC": 922, "ORG": 1341, "PER": 1842}),
    ("test", 3453, 46435, {"LOC": 1668, "MISC": 702, "ORG": 1661, "PER": 1617}),
])
def test_real_files_match_the_published_counts(split, sentences, tokens, entities):
    c = counts(read_split(CONLL, split))
    assert (c["sentences"], c["tokens"], c["entities"]) == (sentences, tokens, entities)


def test_the_real_tags_round_trip_through_iobes():
    for sentence in read_split(CONLL, "valid")[:500]:
        assert [iob2_tag(t) for t in to_iobes(sentence.tags)] == sentence.tags


def test_the_real_iob2_files_are_detected_as_iob2():
    sentences, note = read_tagged(CONLL, "valid")
    assert note == "valid.txt: tags read as IOB2 (--input-scheme auto; no I- tag starts an entity, no E-/S- tag)"
    assert len(sentences) == 3250
