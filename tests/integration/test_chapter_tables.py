"""The summary table of the book's network equals the tables printed in the chapter (../shared/seed)."""

from __future__ import annotations

import re

from loopynet.config import ModelConfig
from loopynet.models.summary import summary
from tests.conftest import SHARED_DATA

CHAPTER = SHARED_DATA.parent / "seed" / "chapter8_recurrent_neural_networks.md"


def chapter_tables() -> list[list[tuple[str, str, str]]]:
    """The (layer, shape, params) rows of each model.summary() printed in the chapter."""
    text = CHAPTER.read_text(encoding="utf-8")
    tables = []
    for block in re.findall(r"Layer \(type\).*?={5,}\n(.*?)={5,}", text, flags=re.S):
        rows = re.findall(r"^(\S+ \(\w+\))\s+(\(None[^)]*\))\s+(\d+)", block, flags=re.M)
        tables.append(rows)
    return tables


def our_rows(config: ModelConfig):
    return re.findall(r"^(\S+ \(\w+\))\s+(\(None[^)]*\))\s+(\d+)", summary(config), flags=re.M)


def test_summary_rows_equal_the_chapters_tables():
    book_50, book_100 = chapter_tables()[:2]
    assert our_rows(ModelConfig(units=50)) == book_50
    assert our_rows(ModelConfig(units=100)) == book_100
