"""Tokenisation: NLTK's TreebankWordTokenizer (the tokenizer of NLP in Action 8.1.5) plus clean-ups.

The book tokenises a whole review at once, without sentence splitting, so sentence-final periods
stay attached (`movie.`), opening quotes become two backticks, IMDB's `<br />` markup becomes the
tokens `<`, `br`, `/`, `>`, and a URL becomes `http`, `:`, `//www...`. That is `TokenizerOptions()`
(= `BOOK`, `loopynet train --preset book`: plain Treebank tokens, exactly). `DEFAULT` turns on four
clean-ups that raise the share of tokens that have a vector (measured on the IMDB test split with the
shared 300-d vectors, see README) and make free text look like CoNLL's pre-tokenised words:

- `strip_html`: markup tags are replaced by a space, keeping the text between them (`<i>great</i>`
  -> `great`), then HTML entities are decoded (`&amp;` -> `&`, `&#39;` -> `'`; `html.unescape`);
- `whole_urls`: URLs (`http://...`, `www....`) and e-mail addresses are one token each;
- `split_periods`: a trailing period is split off a word (`movie.` -> `movie`, `.`), except for
  abbreviations (`U.S.`, `Mr.`, `e.g.`, initials such as `J.`), which keep it;
- `map_quotes`: the Treebank quote tokens `` and '' become `"`.

Every option applies the same way at training and at prediction time, for the classifier and the
tagger (`tokenize` is the one entry point). A leading byte-order mark (U+FEFF) is never a token.
`TOKENIZER_VERSION` is part of the token cache's key: a change here makes old caches unused.
"""

from __future__ import annotations

import functools
import html
import multiprocessing
import os
import re
from dataclasses import dataclass

import numpy as np
from nltk.tokenize import TreebankWordTokenizer

TOKENIZER_NAME = "nltk.TreebankWordTokenizer"
TOKENIZER_VERSION = 2  # 1: <br /> only, every trailing period split, URLs split; 2: this module
_TOKENIZER = TreebankWordTokenizer()
SERIAL_BELOW = 2000  # documents; NLTK tokenises ~2,300 IMDB reviews/s per core (measured here)


# a tag: `<` then a letter, `/` or `!` (so "a < b" and "<3" stay text), up to the next `>`
_TAG = re.compile(r"<[A-Za-z/!][^<>]*>")
# a URL or e-mail address, without trailing punctuation (`see http://x.org/a.` keeps the final period out)
_URL = re.compile(r"(?:\b(?:https?|ftp)://|\bwww\.)[^\s<>\"]+?(?=[.,;:!?)\]}'\"]*(?:\s|$))"
                  r"|\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# initialisms (U.S., e.g., a.m.), single initials (J.) and the English abbreviations whose dotted form
# the shared 300-d vectors hold as a word (`Mr.`, `Inc.`, `vs.`; not `etc.`, `Jan.`): the period belongs to them
_ABBREVIATION = re.compile(
    r"(?:[A-Za-z]\.){2,}|[A-Z]\.|(?:Mr|Mrs|Ms|Dr|Prof|St|Jr|Mt|vs|Inc|Corp|Co|Bros|Gen|Rev|Sen|Rep"
    r"|Feb|Sept|Oct|Nov)\.")
# Treebank splits the period off the text's last word even when it is an abbreviation (`the U.S.` ->
# `U.S` `.`): a text that ends so gets the abbreviation back (and keeps the sentence's `.`)
_ENDS_WITH_ABBREVIATION = re.compile(rf"(?<!\S)(?:{_ABBREVIATION.pattern})[\]\)}}>\"']*\s*$")
_QUOTES = {"``": '"', "''": '"'}


@dataclass(frozen=True)
class TokenizerOptions:
    """Departures from the book's tokenisation (see the module docstring); all off here (= the book)."""

    strip_html: bool = False
    split_periods: bool = False
    map_quotes: bool = False
    whole_urls: bool = False


BOOK = TokenizerOptions()
DEFAULT = TokenizerOptions(strip_html=True, split_periods=True, map_quotes=True, whole_urls=True)


def text_list(texts, tokens_allowed: bool = False) -> list:
    """`texts` as a list, checked: a list (or any iterable, e.g. a generator) of strings, or with
    `tokens_allowed` also of token lists.

    Raises:
        TypeError: `texts` is one string (pass [text]), or an item is not a string (or token list).
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be a list of strings, not one string: pass [text]")
    texts = list(texts)
    for i, text in enumerate(texts):
        ok = isinstance(text, str) or (tokens_allowed and isinstance(text, (list, tuple))
                                       and all(isinstance(t, str) for t in text))
        if not ok:
            kind = "a string or a list of token strings" if tokens_allowed else "a string"
            raise TypeError(f"texts[{i}] must be {kind}, not {type(text).__name__}: {text!r:.60}")
    return texts


def tokenize(text: str, options: TokenizerOptions = BOOK) -> list[str]:
    """Treebank tokens of one document (the book's `tokenizer.tokenize(sample[1])`), plus `options`."""
    text = text.removeprefix("\ufeff")
    if options.strip_html:
        text = html.unescape(_TAG.sub(" ", text))
    tokens = _treebank_keeping_urls(text) if options.whole_urls else _TOKENIZER.tokenize(text)
    if options.split_periods:
        tokens = _split_periods(tokens, bool(_ENDS_WITH_ABBREVIATION.search(text)))
    if options.map_quotes:
        tokens = [_QUOTES.get(tok, tok) for tok in tokens]
    return tokens


def _treebank_keeping_urls(text: str) -> list[str]:
    """Treebank tokens of the text between URLs / e-mail addresses, which stay one token each."""
    tokens, start = [], 0
    for match in _URL.finditer(text):
        tokens += _TOKENIZER.tokenize(text[start : match.start()])
        tokens.append(match.group())
        start = match.end()
    return tokens + _TOKENIZER.tokenize(text[start:])


def _split_periods(tokens: list[str], ends_with_abbreviation: bool) -> list[str]:
    """Split a trailing period off words, except abbreviations. When the text ends with an abbreviation,
    whose period Treebank split off (`U.S` `.`), the abbreviation gets it back and the `.` stays."""
    last = len(tokens) - 1 - tokens[::-1].index(".") if "." in tokens else 0
    if ends_with_abbreviation and last > 0 and _ABBREVIATION.fullmatch(tokens[last - 1] + "."):
        tokens = tokens[: last - 1] + [tokens[last - 1] + "."] + tokens[last:]
    out: list[str] = []
    for tok in tokens:
        if len(tok) > 1 and tok.endswith(".") and not tok.endswith("..") and not _ABBREVIATION.fullmatch(tok):
            out += [tok[:-1], "."]
        else:
            out.append(tok)
    return out


def pack(docs: list[list[str]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(types, flat, lengths): distinct tokens, (tokens,) int32 type ids, (docs,) int64 lengths."""
    type_id: dict[str, int] = {}
    flat = np.fromiter((type_id.setdefault(tok, len(type_id)) for doc in docs for tok in doc), dtype=np.int32)
    return list(type_id), flat, np.array([len(d) for d in docs], dtype=np.int64)


def _tokenize_and_pack(texts: list[str], options: TokenizerOptions = BOOK) -> tuple[list[str], np.ndarray, np.ndarray]:
    return pack([tokenize(t, options) for t in texts])


def tokenize_packed(texts: list[str], workers: int | None = None, options: TokenizerOptions = BOOK
                    ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Tokenise and pack many documents, in `workers` processes (default: all cores, at most 8).

    Each worker returns its chunk packed (a type table + int32 ids), so little crosses process
    boundaries; the chunks' type tables are merged here. Inputs under 2,000 documents stay in
    this process. Returns (types, flat, lengths) as `pack`.
    """
    workers = workers or min(8, os.cpu_count() or 1)
    if workers <= 1 or len(texts) < SERIAL_BELOW:
        return _tokenize_and_pack(texts, options)
    size = -(-len(texts) // (workers * 4))
    chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        parts = pool.map(functools.partial(_tokenize_and_pack, options=options), chunks)
    type_id: dict[str, int] = {}
    flats = []
    for types, flat, _ in parts:
        remap = np.array([type_id.setdefault(t, len(type_id)) for t in types] or [0], dtype=np.int32)
        flats.append(remap[flat])
    return list(type_id), np.concatenate(flats), np.concatenate([p[2] for p in parts])
