"""Vector files: the format comes from the content (every format under every wrong name), refused
formats say what they are, and bad rows / counts name the file, the line or byte, and what was expected."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopynet.data.text import BOM
from loopynet.data.vectors import VectorsError, load_vectors
from tests.conftest import write_word2vec

WORDS = ["good", "bad", "naïve", "U.S."]
TABLE = np.array([[1.0, 2.0], [3.0, -4.5], [0.25, 1e-3], [-7.0, 8.5]], dtype=np.float32)


def _zip(data: bytes, name: str = "vectors.txt") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(name, data)
    return out.getvalue()


CONTAINERS = {"plain": lambda b: b, "gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress, "zip": _zip}
WRONG_NAMES = ["v.bin", "v.txt", "v.vec", "v.gz", "v.bz2", "v.zip", "v.bin.gz", "v.xz", "v"]


def _format_bytes(tmp_path: Path, fmt: str, words=WORDS, table=TABLE) -> bytes:
    if fmt == "glove":
        return "".join(f"{w} {' '.join(repr(float(x)) for x in row)}\n" for w, row in zip(words, table)).encode()
    return write_word2vec(tmp_path / f"gensim.{fmt}", words, table, binary=fmt == "binary").read_bytes()


@pytest.mark.parametrize("fmt", ["binary", "text", "glove"])
@pytest.mark.parametrize("container", sorted(CONTAINERS))
def test_every_format_loads_under_every_wrong_name(tmp_path, fmt, container):
    data = CONTAINERS[container](_format_bytes(tmp_path, fmt))
    for name in WRONG_NAMES:
        path = tmp_path / name
        path.write_bytes(data)
        wv = load_vectors(path)
        assert list(wv.index) == WORDS and np.array_equal(wv.vectors, TABLE), (fmt, container, name)
        assert wv.skipped == 0 and wv.notes == []


def test_gensim_pickles_and_npy_files_are_refused_with_a_conversion_hint(tmp_path):
    from gensim.models import KeyedVectors

    kv = KeyedVectors(2)
    kv.add_vectors(WORDS, TABLE)
    kv.save(str(tmp_path / "model.kv"))
    pickled = tmp_path / "vectors.bin"
    pickled.write_bytes((tmp_path / "model.kv").read_bytes())
    with pytest.raises(VectorsError, match=r"vectors\.bin: a Python pickle \(gensim's KeyedVectors\.save.*"
                                           r"save_word2vec_format\('FILE\.bin', binary=True\)"):
        load_vectors(pickled)
    npy = tmp_path / "vectors.txt"
    np.save(npy.with_suffix(".npy"), TABLE)
    npy.write_bytes(npy.with_suffix(".npy").read_bytes())
    with pytest.raises(VectorsError, match=r"vectors\.txt: a NumPy \.npy array"):
        load_vectors(npy)


def test_a_zip_of_several_files_lists_them_until_one_is_picked(tmp_path):
    path = tmp_path / "vectors.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("README.txt", "not vectors\n")
        z.writestr("glove.txt", _format_bytes(tmp_path, "glove"))
    with pytest.raises(VectorsError, match=r"a zip archive with 2 files \(README\.txt, glove\.txt\); pick one with "
                                           r"--vectors-member NAME"):
        load_vectors(path)
    wv = load_vectors(path, member="glove.txt")
    assert list(wv.index) == WORDS and wv.fingerprint["member"] == "glove.txt"
    with pytest.raises(VectorsError, match=r"no member 'x\.txt' in the zip archive; it holds README\.txt, glove\.txt"):
        load_vectors(path, member="x.txt")
    with pytest.raises(VectorsError, match="line 1 is neither a word2vec header"):
        load_vectors(path, member="README.txt")


@pytest.mark.parametrize("content, found", [
    (b"<!DOCTYPE html><html>404 Not Found</html>\n", "'<!DOCTYPE html><html>404 Not Found</html>'"),
    (b"\x00\x01\x02\x03binary junk\n", "binary data"),
])
def test_unknown_content_says_what_line_1_is(tmp_path, content, found):
    path = tmp_path / "v.bin"
    path.write_bytes(content)
    with pytest.raises(VectorsError, match=rf"v\.bin: line 1 is neither .*\(found {found}\)"):
        load_vectors(path)


def test_bom_is_not_part_of_the_first_word(tmp_path):
    for fmt in ("text", "glove"):
        path = tmp_path / f"{fmt}.txt"
        path.write_bytes(BOM + _format_bytes(tmp_path, fmt))
        assert list(load_vectors(path).index) == WORDS


def _text(rows: list[str], header: str | None) -> bytes:
    return ((header + "\n") if header else "").encode() + "".join(r + "\n" for r in rows).encode()


GOOD_ROWS = ["good 1 2", "bad 3 -4.5", "fine 5 6"]


@pytest.mark.parametrize("header, rows, message, skip_loads, skip_note", [
    ("2 2", GOOD_ROWS, r"the header says 2 vectors, but line 4 holds another row", ["good", "bad", "fine"],
     "the header says 2 vectors, but line 4 holds another row"),
    ("5 2", GOOD_ROWS, r"the header says 5 vectors, but the file ends at line 4 after 3 rows \(truncated\?\)",
     ["good", "bad", "fine"], "file ends at line 4 after 3 rows"),
    ("3 2", ["good 1 2", "bad 3 -4.5 7", "fine 5 6"], r"line 3: expected a word and 2 values, found 4 fields \(--vectors-errors skip",
     ["good", "fine"], "skipped 1 bad rows"),
    ("3 2", ["good 1 2", "new york 3 4", "fine 5 6"],
     r"line 3: expected a word and 2 values, found 4 fields \(a word with a space, 'new york'\?\)", ["good", "fine"],
     "line 3: expected a word and 2 values"),
    ("3 2", ["good 1 2", "bad 3 x", "fine 5 6"], r"line 3: value 'x' of word 'bad' is not a number", ["good", "fine"],
     "value 'x'"),
    ("3 2", ["good 1 2", "bad 3 nan", "fine 5 6"], r"line 3: word 'bad' has a value that is not a finite number",
     ["good", "fine"], "not a finite number"),
    ("3 2", ["good 1 2", "good 3 4", "fine 5 6"], r"line 3: word 'good' repeats \(line 2\)", ["good", "fine"],
     "repeats"),
    (None, ["good 1 2", "bad 3", "fine 5 6"], r"line 2: expected a word and 2 values, found 2 fields",
     ["good", "fine"], "line 2"),
])
def test_text_rows_and_counts_name_file_line_and_expectation(tmp_path, header, rows, message, skip_loads, skip_note):
    path = tmp_path / "v.txt"
    path.write_bytes(_text(rows, header))
    with pytest.raises(VectorsError, match=rf"--vectors {path} .*{message}"):
        load_vectors(path)
    wv = load_vectors(path, errors="skip")
    assert list(wv.index) == skip_loads
    assert any(skip_note in note for note in wv.notes) and all(note.startswith(f"--vectors {path}: ") for note in wv.notes)
    assert wv.skipped == 3 - len(skip_loads) + (header is not None and header.startswith(("2", "5")) and 0)


def test_a_word_that_is_not_utf8_names_its_line_and_is_skipped_on_request(tmp_path):
    path = tmp_path / "v.txt"
    path.write_bytes(b"3 2\ngood 1 2\nb\xffd 3 4\nfine 5 6\n")
    with pytest.raises(VectorsError, match=r"line 3: the word is not valid UTF-8 \(byte 1 of the word"):
        load_vectors(path)
    wv = load_vectors(path, errors="skip")
    assert list(wv.index) == ["good", "fine"] and wv.skipped == 1 and wv.notes[0].endswith("skipped 1 bad rows")


def test_binary_truncation_says_how_many_vectors_were_read(tmp_path):
    path = write_word2vec(tmp_path / "v.bin", WORDS, TABLE)
    data = path.read_bytes()
    path.write_bytes(data[:-5])
    with pytest.raises(VectorsError, match=r"word2vec binary\) *: ?the file ends at byte [\d,]+ where vector 4 of the "
                                           r"header's 4 should start \(2 float32 values expected\): 3 vectors read"):
        load_vectors(path)
    wv = load_vectors(path, errors="skip")
    assert list(wv.index) == WORDS[:3] and np.array_equal(wv.vectors, TABLE[:3])
    path.write_bytes(data + b"extra 12345678\n")
    with pytest.raises(VectorsError, match=rf"the header says 4 vectors, but more data follows them at byte {len(data)}"):
        load_vectors(path)
    path.write_bytes(data.replace("naïve".encode(), b"na\xff\xffe"))
    with pytest.raises(VectorsError, match=r"byte \d+ \(vector 3\): the word is not valid UTF-8"):
        load_vectors(path)
    assert list(load_vectors(path, errors="skip").index) == ["good", "bad", "U.S."]


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(VectorsError, match="no such file"):
        load_vectors(tmp_path / "none.bin")
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(VectorsError, match="file is empty"):
        load_vectors(tmp_path / "empty.bin")
    (tmp_path / "empty.gz").write_bytes(gzip.compress(b""))
    with pytest.raises(VectorsError, match=r"\(gzip\): holds no data"):
        load_vectors(tmp_path / "empty.gz")


WORD = st.text(st.characters(categories=("L", "N", "P", "S"), exclude_characters="\ufeff"), min_size=1, max_size=10)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(WORD, min_size=1, max_size=12, unique=True),
       dims=st.integers(1, 6), fmt=st.sampled_from(["binary", "text", "glove"]),
       container=st.sampled_from(sorted(CONTAINERS)), name=st.sampled_from(WRONG_NAMES), seed=st.integers(0, 2**16))
def test_any_table_round_trips_through_any_format_container_and_name(tmp_path, words, dims, fmt, container, name, seed):
    if fmt == "glove" and words[0].isdigit() and dims == 1:
        words = ["w"] + words[1:]  # "3 0.5": a header line, which is what such a first line is
    table = np.random.default_rng(seed).normal(0, 3, (len(words), dims)).astype(np.float32)
    path = tmp_path / name
    path.write_bytes(CONTAINERS[container](_format_bytes(tmp_path, fmt, words, table)))
    wv = load_vectors(path)
    assert list(wv.index) == words and np.array_equal(wv.vectors, table)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(2, 12), bad=st.data(), extra=st.integers(1, 3))
def test_one_bad_row_anywhere_is_named_by_its_line_and_skipped_on_request(tmp_path, rows, bad, extra):
    lines = [f"w{i} {i} {-i}" for i in range(rows)]
    at = bad.draw(st.integers(0, rows - 1))
    lines[at] += " 0" * extra
    path = tmp_path / "v.txt"
    path.write_bytes(_text(lines, f"{rows} 2"))
    with pytest.raises(VectorsError, match=rf":? ?line {at + 2}: expected a word and 2 values, found {3 + extra} fields"):
        load_vectors(path)
    wv = load_vectors(path, errors="skip")
    assert list(wv.index) == [f"w{i}" for i in range(rows) if i != at] and wv.skipped == 1
    assert np.array_equal(wv.vectors, [[i, -i] for i in range(rows) if i != at])


def test_train_skips_bad_rows_only_on_request_and_reports_them(tiny_imdb, tiny_vectors, tmp_path, capsys):
    import json

    from loopynet.cli import main
    from loopynet.data.vectors import load_vectors as load

    good = load(tiny_vectors)
    rows = [f"{w} {' '.join(repr(float(x)) for x in good.vectors[i])}" for w, i in good.index.items()]
    rows.insert(3, "new york " + " ".join(["0.5"] * good.embedding_dims))
    path = tmp_path / "vectors.bin"  # text, misnamed
    path.write_bytes(_text(rows, f"{len(rows)} {good.embedding_dims}"))
    argv = ["train", "--data", str(tiny_imdb), "--vectors", str(path), "--maxlen", "12", "--units", "4", "--epochs", "0",
            "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "strict")]) == 2
    err = capsys.readouterr().err
    assert f"--vectors {path} (word2vec text) line 5: expected a word and 8 values, found 10 fields (a word with a " \
           "space, 'new york'?)" in err and not (tmp_path / "strict").exists()
    assert main([*argv, "--out", str(tmp_path / "skip"), "--vectors-errors", "skip"]) == 0
    err = capsys.readouterr().err
    assert f"--vectors {path}: skipped 1 bad rows" in err
    report = json.loads((tmp_path / "skip" / "data_report.json").read_text())
    assert report["vectors"]["skipped_rows"] == 1 and report["vectors"]["notes"][1].endswith("'new york'?)")
