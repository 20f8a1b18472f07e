"""Unit tests use tiny fixtures only: none names the shared real data (that is what tests/integration is for)."""

from __future__ import annotations

from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent
REAL_DATA = ("SHARED_DATA", "real_data", "IMDB", "VECTORS_300D", "GLOVE_50D", "conll2003", "shared")


@pytest.mark.parametrize("path", sorted(p for p in UNIT.glob("test_*.py") if p.name != Path(__file__).name),
                         ids=lambda p: p.name)
def test_no_unit_test_reads_the_shared_data(path):
    text = path.read_text(encoding="utf-8")
    assert [word for word in REAL_DATA if word in text] == []
