"""Corpus readers: folders, split folders, archives, class names, encodings, and their errors."""

from __future__ import annotations

import re
import tarfile

import pytest

from loopynet.data.corpus import CorpusError, read_corpus
from tests.conftest import write_split


def make_tar(src, archive, arcname):
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname=arcname)
    return archive


def test_root_folder_reads_the_chosen_split_and_ignores_unsup(tiny_imdb):
    train = read_corpus(tiny_imdb, "train")
    test = read_corpus(tiny_imdb, "test")
    assert (len(train), len(test)) == (120, 40)
    assert train.class_names == ["neg", "pos"]
    assert train.labels.count(1) == 60 and all(p.split("/")[1] in ("neg", "pos") for p in train.paths)


def test_split_folder_with_any_class_names(tmp_path):
    write_split(tmp_path / "reviews", 3, seed=0, classes=("bad", "good"))
    corpus = read_corpus(tmp_path / "reviews", "train")
    assert corpus.class_names == ["bad", "good"] and len(corpus) == 6
    assert [corpus.labels[i] for i, p in enumerate(corpus.paths) if p.startswith("good/")] == [1, 1, 1]


@pytest.mark.parametrize("arcname", ["aclImdb", "."])
def test_archive_of_a_root_equals_the_folder(tiny_imdb, tmp_path, arcname):
    archive = make_tar(tiny_imdb, tmp_path / "imdb.tar.gz", arcname)
    from_archive, from_folder = read_corpus(archive, "test"), read_corpus(tiny_imdb, "test")
    assert from_archive.texts == from_folder.texts and from_archive.labels == from_folder.labels


def test_archive_of_a_split_folder(tmp_path):
    write_split(tmp_path / "mine", 2, seed=0)
    archive = make_tar(tmp_path / "mine", tmp_path / "mine.tgz", "mine")
    assert len(read_corpus(archive, "train")) == 4


def test_non_utf8_file_stops_with_path_and_byte_offset(tmp_path):
    root = write_split(tmp_path / "s", 2, seed=0)
    (root / "pos" / "bad.txt").write_bytes(b"good movie \xff\xfe end")
    with pytest.raises(CorpusError, match=rf"{re.escape(str(root))}/pos/bad\.txt: not valid UTF-8 at byte 11"):
        read_corpus(root)
    replaced = read_corpus(root, encoding_errors="replace")
    assert "good movie \ufffd\ufffd end" in replaced.texts


def test_non_utf8_member_of_an_archive_names_archive_and_member(tmp_path):
    root = write_split(tmp_path / "s", 1, seed=0)
    (root / "neg" / "x.txt").write_bytes(b"ab\x80")
    with pytest.raises(CorpusError, match=r"s\.tar\.gz:s/neg/x\.txt: not valid UTF-8 at byte 2"):
        read_corpus(make_tar(root, tmp_path / "s.tar.gz", "s"))


def test_empty_document_is_read_not_rejected(tmp_path):
    root = write_split(tmp_path / "s", 2, seed=0)
    (root / "neg" / "empty.txt").write_bytes(b"")
    assert "" in read_corpus(root).texts


@pytest.mark.parametrize("setup, message", [
    (lambda p: p / "nope", "no such file or folder"),
    (lambda p: (p / "empty").mkdir() or p / "empty", r"no split folder 'train' .*\(found no \.txt file in a class sub-folder\)"),
    (lambda p: write_split(p / "one", 1, seed=0, classes=("only",)), "need at least 2"),
    (lambda p: (p / "x.tar.gz").write_bytes(b"not a tar") and p / "x.tar.gz", "cannot read archive"),
    (lambda p: (p / "f.csv").write_text("a,b") and p / "f.csv", "expected a folder"),
])
def test_bad_data_paths_give_clear_errors(tmp_path, setup, message):
    with pytest.raises(CorpusError, match=message) as error:
        read_corpus(setup(tmp_path), "train")
    assert "\n" not in str(error.value)  # the CLI prints it as one line


def test_root_without_the_requested_split_lists_what_it_found(tiny_imdb):
    with pytest.raises(CorpusError, match=r"no split folder 'dev'.*found split folders: \['test', 'train'\]"):
        read_corpus(tiny_imdb, "dev")
