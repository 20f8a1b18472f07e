"""Atomic writes: a failed write keeps the previous file and leaves no temporary file behind."""

from __future__ import annotations

import pytest

from loopynet.io.atomic import atomic_file


def test_a_failed_write_keeps_the_old_file_and_cleans_up(tmp_path):
    target = tmp_path / "state.json"
    with atomic_file(target, "w") as f:
        f.write("old ü")
    with pytest.raises(RuntimeError), atomic_file(target, "w") as f:
        f.write("half")
        raise RuntimeError("killed")
    assert target.read_text(encoding="utf-8") == "old ü"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_binary_write_replaces_the_file(tmp_path):
    target = tmp_path / "blob.bin"
    target.write_bytes(b"old")
    with atomic_file(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new" and len(list(tmp_path.iterdir())) == 1
