"""Hidden entries in a data folder or archive (Jupyter checkpoints, macOS `._` files) are skipped and counted."""

from __future__ import annotations

import json
import tarfile

from loopynet.cli import main
from loopynet.data.corpus import read_corpus
from tests.conftest import write_split

APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "  # a macOS ._ file's header: not text


def _with_hidden(root):
    write_split(root, 4, seed=3)
    (root / ".ipynb_checkpoints").mkdir()
    (root / ".ipynb_checkpoints" / "0_2-checkpoint.txt").write_text("a notebook's copy", encoding="utf-8")
    (root / "pos" / "._0_7.txt").write_bytes(APPLE_DOUBLE)
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return root


HIDDEN = [".DS_Store", ".ipynb_checkpoints", "pos/._0_7.txt"]


def test_a_folder_with_hidden_entries_reads_only_the_reviews(tmp_path):
    corpus = read_corpus(_with_hidden(tmp_path / "train"))
    assert corpus.class_names == ["neg", "pos"] and len(corpus) == 8
    assert corpus.hidden == HIDDEN and not any("/." in p or p.startswith(".") for p in corpus.paths)


def test_an_archive_with_hidden_entries_reads_only_the_reviews(tmp_path):
    root = _with_hidden(tmp_path / "aclImdb" / "train")
    archive = tmp_path / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root.parent, arcname="./aclImdb")
    corpus = read_corpus(archive, "train")
    assert corpus.class_names == ["neg", "pos"] and len(corpus) == 8
    assert corpus.hidden == [f"aclImdb/train/{h}" for h in HIDDEN]


def test_train_says_how_many_hidden_entries_it_skipped(tiny_vectors, tmp_path, capsys):
    data = _with_hidden(tmp_path / "train")
    out = tmp_path / "model"
    assert main(["train", "--data", str(data), "--vectors", str(tiny_vectors), "--out", str(out), "--maxlen", "12",
                 "--units", "4", "--epochs", "0", "--quiet"]) == 0
    assert f"--data {data}: skipped 3 hidden entries (.DS_Store, .ipynb_checkpoints, pos/._0_7.txt)" in capsys.readouterr().err
    read = json.loads((out / "data_report.json").read_text())["read"]
    assert read == {"hidden_entries_skipped": 3, "hidden_entries": HIDDEN}
