"""The one tokenizer pipeline (classifier train/predict, tagger predict): a table of tricky inputs,
`--preset book`'s plain Treebank tokens, and properties that hold for any text (hypothesis)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.tokenize import TreebankWordTokenizer

from loopynet.config import BOOK_DATA, DataConfig
from loopynet.data import tokenized as tokenized_module
from loopynet.data.prepare import tokenizer_options
from loopynet.data.tokenize import BOOK, DEFAULT, TOKENIZER_VERSION, tokenize
from loopynet.tasks.tagging.encoding import tokenize as tagger_tokenize

TABLE = [
    ("I met Mr. Smith in the U.S. last year.", ["I", "met", "Mr.", "Smith", "in", "the", "U.S.", "last", "year", "."]),
    ("He lives in the U.S.", ["He", "lives", "in", "the", "U.S.", "."]),
    ("Dr. No, e.g. the 007 film, vs. Goldfinger.", ["Dr.", "No", ",", "e.g.", "the", "007", "film", ",", "vs.",
                                                    "Goldfinger", "."]),
    ("George W. Bush liked it.", ["George", "W.", "Bush", "liked", "it", "."]),
    ("See http://www.imdb.com/title/tt0111161/. It is great.",
     ["See", "http://www.imdb.com/title/tt0111161/", ".", "It", "is", "great", "."]),
    ("(more at www.example.org)", ["(", "more", "at", "www.example.org", ")"]),
    ("Mail me at jane.doe+imdb@example.co.uk.", ["Mail", "me", "at", "jane.doe+imdb@example.co.uk", "."]),
    ("Fish &amp; chips &#39;n&#x27; more", ["Fish", "&", "chips", "'n", "'", "more"]),
    ("<i>Great</i> acting.<br /><br />Bad plot.", ["Great", "acting", ".", "Bad", "plot", "."]),
    ('<a href="http://x.org">the <b>best</b></a> film', ["the", "best", "film"]),
    ("&lt;b&gt; is shown, a < b and <3 too", ["<", "b", ">", "is", "shown", ",", "a", "<", "b", "and", "<", "3", "too"]),
    ('He said "wow." and left...', ["He", "said", '"', "wow", ".", '"', "and", "left", "..."]),
    ("It was the movie. Then Paris. The end", ["It", "was", "the", "movie", ".", "Then", "Paris", ".", "The", "end"]),
    ("\ufeffHello.", ["Hello", "."]),
]


@pytest.mark.parametrize("text, expected", TABLE)
def test_tricky_inputs_give_these_tokens(text, expected):
    assert tokenize(text, DEFAULT) == expected


def test_the_book_pipeline_is_plain_treebank():
    treebank = TreebankWordTokenizer()
    for text, _ in TABLE:
        assert tokenize(text, BOOK) == treebank.tokenize(text.removeprefix("\ufeff"))
    assert tokenizer_options(DataConfig(**BOOK_DATA)) == BOOK and tokenizer_options(DataConfig()) == DEFAULT


def test_tagger_predict_splits_a_mid_text_period_like_conll_training_tokens():
    assert tagger_tokenize("Angela Merkel visited Paris. Then she met Mr. Macron in the U.S.") == [
        "Angela", "Merkel", "visited", "Paris", ".", "Then", "she", "met", "Mr.", "Macron", "in", "the", "U.S.", "."]


def test_the_cache_key_holds_the_tokenizer_version(tmp_path, monkeypatch):
    (tmp_path / "pos").mkdir(), (tmp_path / "neg").mkdir()
    key = tokenized_module.cache_key(tmp_path, "train", "strict", DEFAULT)
    monkeypatch.setattr(tokenized_module, "TOKENIZER_VERSION", TOKENIZER_VERSION + 1)
    assert tokenized_module.cache_key(tmp_path, "train", "strict", DEFAULT) != key


def test_a_model_trained_with_an_older_tokenizer_warns_on_load(tiny_imdb, tiny_vectors, tmp_path):
    from loopynet.tasks.classification.api import Classifier
    from loopynet.config import ModelConfig, TrainConfig

    clf = Classifier.train(tiny_imdb, tiny_vectors, DataConfig(), ModelConfig(units=4, maxlen=12), TrainConfig(epochs=0),
                           progress=False, log=lambda line: None)
    out = clf.save(tmp_path / "m")
    config = json.loads((out / "config.json").read_text())
    assert config["tokenizer"] == {"name": "nltk.TreebankWordTokenizer", "version": TOKENIZER_VERSION}
    del config["tokenizer"]
    (out / "config.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning, match="trained with tokenizer version 1"):
        Classifier.load(out)


WORDS = st.text(st.characters(categories=("L", "N")), min_size=1, max_size=8)
PLAIN = st.one_of(WORDS, st.sampled_from([".", ",", "!", "?", "U.S.", "Mr.", "http://a.org/x", "a@b.org", "(", ")"]))
MARKUP = st.sampled_from(["<br />", "<i>", "</i>", '<a href="x">', "<p>"])


@settings(max_examples=200, deadline=None)
@given(st.lists(PLAIN, max_size=25))
def test_no_word_character_is_lost_or_invented_and_periods_are_split(pieces):
    text = " ".join(pieces)
    tokens = tokenize(text, DEFAULT)
    assert all(tok and not any(ch.isspace() for ch in tok) for tok in tokens)
    assert [ch for tok in tokens for ch in tok if ch.isalnum()] == [ch for ch in text if ch.isalnum()]
    assert all(tok in (".", "U.S.", "Mr.") for tok in tokens if tok.endswith("."))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(PLAIN, st.one_of(st.none(), MARKUP)), max_size=25))
def test_markup_between_words_and_a_leading_bom_change_no_token(pairs):
    plain = " ".join(piece for piece, _ in pairs)
    marked = " ".join(piece if markup is None else f"{piece} {markup}" for piece, markup in pairs)
    assert tokenize("\ufeff" + marked, DEFAULT) == tokenize(marked, DEFAULT) == tokenize(plain, DEFAULT)
    assert tokenize(plain.replace("&", "&amp;"), DEFAULT) == tokenize(plain, DEFAULT)
