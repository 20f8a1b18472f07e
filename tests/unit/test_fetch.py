"""`loopynet.data.fetch` against a local HTTP server (127.0.0.1 only) serving a tiny aclImdb-like archive."""

from __future__ import annotations

import hashlib
import io
import random
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from loopynet.cli import main
from loopynet.data.fetch import DATASETS, FetchError, fetch, loopynet_home

FILENAME = DATASETS["imdb"].filename


def _archive() -> bytes:
    """A small aclImdb-like tar.gz; an incompressible member makes it span several read chunks."""
    members = {
        "aclImdb/README": b"Large Movie Review Dataset (test copy)\n",
        "aclImdb/train/pos/0_9.txt": b"A wonderful film.",
        "aclImdb/train/neg/1_2.txt": b"A dreadful film.",
        "aclImdb/test/pos/0_10.txt": b"Loved it.",
        "aclImdb/test/neg/1_1.txt": b"Hated it.",
        "aclImdb/noise.bin": random.Random(0).randbytes(200_000),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


PAYLOAD = _archive()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


class Server:
    """What the handler serves and what it saw. mode: "normal", "cut_once", "ignore_range" or "404"."""

    def __init__(self) -> None:
        self.mode = "normal"
        self.ranges: list[str | None] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/{FILENAME}"

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requested = self.headers.get("Range")
                server.ranges.append(requested)
                if server.mode == "404":
                    self.send_error(404)
                    return
                start = 0
                if requested and server.mode != "ignore_range":
                    start = int(requested.removeprefix("bytes=").removesuffix("-"))
                if start >= len(PAYLOAD):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(PAYLOAD)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = PAYLOAD[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.mode == "cut_once":
                    server.mode = "normal"
                    body = body[: len(body) // 2]  # promised the whole length; HTTP/1.0 closes after this
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        return Handler


@pytest.fixture
def server():
    srv = Server()
    thread = threading.Thread(target=srv.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    thread.join(timeout=2)


def _fetch(server: Server, home: Path, **kwargs) -> Path:
    kwargs = {"url": server.url, "md5": MD5, "progress": False, "timeout": 5.0, **kwargs}
    return fetch("imdb", home=home, **kwargs)


def _final(home: Path) -> Path:
    return home / "data" / FILENAME


def _part(home: Path) -> Path:
    return home / "data" / (FILENAME + ".part")


def test_download_verifies_and_lands_in_cache(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: the bar is drawn
    path = _fetch(server, tmp_path, progress=True)
    assert path == _final(tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert not _part(tmp_path).exists()
    assert server.ranges == [None]
    assert FILENAME.removesuffix(".gz") in capsys.readouterr().err  # tqdm bar on stderr
    with tarfile.open(path) as tar:
        assert "aclImdb/train/pos/0_9.txt" in tar.getnames()


def test_no_progress_frames_when_stderr_is_not_a_terminal(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LOOPYNET_HOME", str(tmp_path))
    assert main(["data", "fetch", "imdb", "--url", server.url, "--md5", MD5]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{_final(tmp_path)}\n" and captured.err == ""  # not one \r-separated bar frame
    assert _final(tmp_path).read_bytes() == PAYLOAD


def test_second_call_does_not_download(server, tmp_path):
    _fetch(server, tmp_path)
    assert _fetch(server, tmp_path) == _final(tmp_path)
    assert len(server.ranges) == 1


def test_wrong_checksum_raises_and_leaves_nothing(server, tmp_path):
    wrong = "0" * 32
    with pytest.raises(FetchError) as excinfo:
        _fetch(server, tmp_path, md5=wrong)
    assert wrong in str(excinfo.value) and MD5 in str(excinfo.value)
    assert f"pass --md5 {MD5}" in str(excinfo.value)  # the fix: re-running downloads the same file again
    assert not _final(tmp_path).exists()
    assert not _part(tmp_path).exists()


def test_cut_connection_keeps_part_then_resumes(server, tmp_path):
    server.mode = "cut_once"
    with pytest.raises(FetchError, match="re-run"):
        _fetch(server, tmp_path)
    kept = _part(tmp_path).read_bytes()
    assert 0 < len(kept) < len(PAYLOAD)
    assert kept == PAYLOAD[: len(kept)]
    assert not _final(tmp_path).exists()

    path = _fetch(server, tmp_path)
    assert server.ranges == [None, f"bytes={len(kept)}-"]
    assert path.read_bytes() == PAYLOAD
    assert not _part(tmp_path).exists()


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.mode = "ignore_range"
    _part(tmp_path).parent.mkdir(parents=True)
    _part(tmp_path).write_bytes(b"stale bytes that must not survive")
    path = _fetch(server, tmp_path)
    assert server.ranges == ["bytes=33-"]
    assert path.read_bytes() == PAYLOAD


def test_complete_part_is_verified_without_a_body(server, tmp_path):
    _part(tmp_path).parent.mkdir(parents=True)
    _part(tmp_path).write_bytes(PAYLOAD)
    assert _fetch(server, tmp_path).read_bytes() == PAYLOAD  # server answered 416
    assert server.ranges == [f"bytes={len(PAYLOAD)}-"]


def test_unknown_dataset_names_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="imdb"):
        fetch("mnist", home=tmp_path, progress=False)


def test_http_404_raises_fetch_error(server, tmp_path):
    server.mode = "404"
    with pytest.raises(FetchError, match="HTTP 404 .*check the URL") as error:
        _fetch(server, tmp_path)
    assert "re-run the same command" not in str(error.value).lower()  # a 404 does not go away by retrying
    assert not _final(tmp_path).exists()
    assert not _part(tmp_path).exists()


def test_home_defaults_to_env_var(server, tmp_path, monkeypatch):
    monkeypatch.setenv("LOOPYNET_HOME", str(tmp_path / "env-home"))
    assert loopynet_home() == tmp_path / "env-home"
    assert fetch("imdb", url=server.url, md5=MD5, progress=False, timeout=5.0) == _final(tmp_path / "env-home")


def test_home_falls_back_to_user_cache(monkeypatch):
    monkeypatch.delenv("LOOPYNET_HOME", raising=False)
    assert loopynet_home() == Path.home() / ".cache" / "loopynet"


def test_unreachable_server_raises_fetch_error(tmp_path):
    with pytest.raises(FetchError, match="Re-run the same command to retry") as error:
        fetch("imdb", home=tmp_path, url="http://127.0.0.1:1/", md5=MD5, progress=False, timeout=2.0)
    assert "Offline? Download the archive on another machine and pass its path to --data, or name a reachable " \
           "mirror with --url" in str(error.value)
    assert not _part(tmp_path).exists()


def test_cli_fetch_prints_the_path_and_reports_errors(server, tmp_path, monkeypatch, capsys):
    from loopynet.cli import main

    monkeypatch.setenv("LOOPYNET_HOME", str(tmp_path))
    assert main(["data", "fetch", "imdb", "--url", server.url, "--md5", MD5]) == 0
    assert capsys.readouterr().out.strip() == str(_final(tmp_path))
    _final(tmp_path).unlink()
    assert main(["data", "fetch", "imdb", "--url", server.url]) == 2  # the publisher's MD5 does not match
    assert "7c2ac02c03563afcf9b574c7e56c153a" in capsys.readouterr().err


def test_malformed_md5_is_refused_before_any_download(tmp_path):
    with pytest.raises(ValueError, match="--md5 must be 32 hexadecimal digits, got 'xyz'"):
        fetch("imdb", home=tmp_path, url="http://127.0.0.1:1/", md5="xyz", progress=False, timeout=2.0)
    assert not (tmp_path / "data").exists()
