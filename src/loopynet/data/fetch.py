"""Download a dataset archive into the local cache: streamed, resumable, MD5-verified.

`loopynet data fetch imdb` calls `fetch("imdb")`. The archive is written to `NAME.part` next to
its final path and renamed (`os.replace`) only once its MD5 matches, so the final file is never
half-written. A `.part` left by an interrupted run is continued with an HTTP `Range` request.
Only the standard library speaks HTTP (`urllib.request`); tqdm draws the progress bar on stderr when it
is a terminal (a redirected log gets no bar frames, like training's).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from loopynet.errors import InputError, UserError
from loopynet.home import loopynet_home

CHUNK_BYTES = 1 << 16


@dataclass(frozen=True)
class Dataset:
    """A downloadable archive.

    name: the key in `DATASETS` (what `loopynet data fetch NAME` takes).
    url: where the publisher serves the archive.
    md5: hex MD5 digest of the whole archive.
    filename: the archive's name in the cache (`$LOOPYNET_HOME/data/<filename>`).
    size_bytes: the archive's size in bytes; informational only (the server's Content-Length rules).
    """

    name: str
    url: str
    md5: str
    filename: str
    size_bytes: int


# URL and MD5 from the dataset's page, https://ai.stanford.edu/~amaas/data/sentiment/ (Maas et al.
# 2011, "Learning Word Vectors for Sentiment Analysis", ACL): the Large Movie Review Dataset v1.0.
DATASETS: dict[str, Dataset] = {
    "imdb": Dataset(
        name="imdb",
        url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
        md5="7c2ac02c03563afcf9b574c7e56c153a",
        filename="aclImdb_v1.tar.gz",
        size_bytes=84_125_825,
    ),
}


class FetchError(UserError, RuntimeError):
    """A download failed (network error, HTTP error, short read) or its MD5 did not match."""


def fetch(
    name: str,
    home: Path | None = None,
    url: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    md5: str | None = None,
) -> Path:
    """Download dataset `name` into `<home>/data/` unless a verified copy is there; return its path.

    home: cache root (default `loopynet_home()`).
    url: overrides the dataset's URL (a mirror, or a local server in tests).
    progress: draw a tqdm progress bar (bytes) on stderr, when stderr is a terminal.
    timeout: seconds to wait for the connection and for each read.
    md5: overrides the dataset's expected hex MD5 (for a mirror serving another build, or tests).

    Raises:
        ValueError: `name` is not in `DATASETS`, or `md5` is not 32 hex digits (checked before downloading).
        FetchError: the download failed (the partial bytes stay in `<file>.part` and re-running
            resumes from them) or the MD5 did not match (the `.part` is deleted).
    """
    dataset = _dataset(name)
    target = Path(home or loopynet_home()) / "data" / dataset.filename
    expected = (md5 or dataset.md5).lower()
    if not re.fullmatch(r"[0-9a-f]{32}", expected):
        raise InputError(f"--md5 must be 32 hexadecimal digits, got {md5!r}")
    if target.exists() and _md5_of(target) == expected:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    _download(url or dataset.url, part, timeout, progress)
    _verify(part, expected)
    os.replace(part, target)
    return target


def _dataset(name: str) -> Dataset:
    """The registered dataset `name`; InputError naming the known ones otherwise."""
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; known datasets: {sorted(DATASETS)}")
    return DATASETS[name]


def _download(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Fetch `url` into `part`, continuing from its current size with a Range request.

    A server that answers 200 instead of 206 (Range ignored) restarts the file from byte 0; one that
    answers 416 (nothing past the end) means `part` is already whole, and the checksum decides.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
            _stream(response, part, offset if response.status == 206 else 0, progress, url)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            return
        if 400 <= err.code < 500 and err.code not in (408, 429):  # the request itself is wrong: no retry helps
            raise FetchError(f"download of {url} failed: HTTP {err.code} {err.reason}; check the URL "
                             "(--url) — re-running will not help") from err
        raise FetchError(_failure(url, part, f"HTTP {err.code} {err.reason}")) from err
    except urllib.error.URLError as err:  # no connection at all: offline, DNS, refused
        raise FetchError(_failure(url, part, str(err.reason) or type(err).__name__) + " Offline? Download the "
                         "archive on another machine and pass its path to --data, or name a reachable mirror "
                         "with --url.") from err
    except (http.client.IncompleteRead, ConnectionError, TimeoutError) as err:
        raise FetchError(_failure(url, part, str(err) or type(err).__name__)) from err


def _stream(response, part: Path, offset: int, progress: bool, url: str) -> None:
    """Write the response body to `part` (appending after `offset` bytes, or from zero when 0).

    Raises FetchError when the body ends before its Content-Length.
    """
    length = response.headers.get("Content-Length")
    body_bytes = int(length) if length is not None else None
    received = 0
    with (
        open(part, "ab" if offset else "wb") as out,
        tqdm(
            total=None if body_bytes is None else offset + body_bytes,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=part.name.removesuffix(".part"),
            file=sys.stderr,
            disable=not progress or not sys.stderr.isatty(),  # no \r-separated frames in a log file
        ) as bar,
    ):
        while chunk := response.read(CHUNK_BYTES):
            out.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    if body_bytes is not None and received < body_bytes:
        raise FetchError(_failure(url, part, f"connection closed after {received} of {body_bytes} bytes"))


def _failure(url: str, part: Path, reason: str) -> str:
    """The message for an interrupted download: what failed, and that re-running resumes."""
    kept = part.stat().st_size if part.exists() else 0
    if not kept:
        return f"download of {url} failed: {reason}. Re-run the same command to retry."
    return (
        f"download of {url} failed: {reason}. "
        f"{kept} bytes are kept in {part}; re-run the same command to resume."
    )


def _verify(part: Path, expected: str) -> None:
    """Check `part`'s MD5; on mismatch delete it and raise FetchError with both digests."""
    actual = _md5_of(part)
    if actual != expected:
        part.unlink()
        raise FetchError(
            f"checksum mismatch for {part.name.removesuffix('.part')}: expected MD5 {expected}, "
            f"got {actual}; the download was deleted. Re-running downloads the same file again: if this "
            f"mirror serves another build of the archive and you trust it, pass --md5 {actual}."
        )


def _md5_of(path: Path) -> str:
    """Hex MD5 digest of the file at `path`, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
