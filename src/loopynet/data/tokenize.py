"""Tokenisation with NLTK's TreebankWordTokenizer, the tokenizer of NLP in Action 8.1.5.

The book tokenises a whole review at once, without sentence splitting, so sentence-final periods
stay attached (`movie.`), opening quotes become two backticks, and IMDB's `<br />` markup becomes
the tokens `<`, `br`, `/`, `>`. That is `TokenizerOptions()` (= `BOOK`). Three options raise the share
of tokens that have a vector (measured on the IMDB test split with the shared 300-d vectors, see
README; loopynet's `DataConfig` turns all three on by default): `strip_html` replaces `<br />` with a
space, `split_periods` splits a trailing period off a word (`movie.` -> `movie`, `.`), `map_quotes`
maps the Treebank quote tokens `` and '' to `"`.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import re
from dataclasses import dataclass

import numpy as np
from nltk.tokenize import TreebankWordTokenizer

TOKENIZER_NAME = "nltk.TreebankWordTokenizer"
_TOKENIZER = TreebankWordTokenizer()
SERIAL_BELOW = 2000  # documents; NLTK tokenises ~2,300 IMDB reviews/s per core (measured here)


_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_QUOTES = {"``": '"', "''": '"'}


@dataclass(frozen=True)
class TokenizerOptions:
    """Departures from the book's tokenisation; all off here (= the book; DataConfig's defaults turn them on)."""

    strip_html: bool = False
    split_periods: bool = False
    map_quotes: bool = False


BOOK = TokenizerOptions()


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
    if options.strip_html:
        text = _BR.sub(" ", text)
    tokens = _TOKENIZER.tokenize(text)
    if options.split_periods:
        tokens = [part for tok in tokens for part in _split_period(tok)]
    if options.map_quotes:
        tokens = [_QUOTES.get(tok, tok) for tok in tokens]
    return tokens


def _split_period(token: str) -> tuple[str, ...]:
    if len(token) > 1 and token.endswith(".") and not token.endswith(".."):
        return token[:-1], "."
    return (token,)


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
