"""Labelled text corpora: a folder or a .tar.gz with one sub-folder per class (the aclImdb layout).

Accepted `--data` forms (all read as UTF-8, a leading byte-order mark dropped, one document per `.txt` file):
- a root folder holding split folders: `aclImdb/{train,test}/{neg,pos}/*.txt`;
- a split folder holding class folders: `train/{neg,pos}/*.txt` (any class names);
- a `.tar.gz` / `.tgz` / `.tar` of either; it is read in place, never extracted.

Class names are sorted, so labels follow Keras' `text_dataset_from_directory`: for IMDB neg=0, pos=1.
The folder `unsup` (unlabelled reviews in the official IMDB archive) is never a class. Hidden entries
(a name starting with `.`: Jupyter's `.ipynb_checkpoints/`, macOS's `._name.txt` and `.DS_Store`) are
skipped, with what they hold, and listed in `Corpus.hidden` (the data report counts them).
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from loopynet.errors import UserError
from loopynet.data.text import decode_utf8

UNLABELLED = {"unsup"}
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


class CorpusError(UserError, ValueError):
    """Unreadable or malformed corpus input (missing folder, no documents, bad encoding)."""


@dataclass
class Corpus:
    """Documents of one split, in a stable order (sorted by path).

    texts[i] is document i, labels[i] its class index into class_names, paths[i] where it came from;
    hidden: the hidden files and folders that were skipped (relative paths, a folder once, sorted).
    """

    texts: list[str]
    labels: list[int]
    class_names: list[str]
    paths: list[str]
    hidden: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)


def is_archive(path: Path) -> bool:
    return path.name.endswith(ARCHIVE_SUFFIXES)


def read_corpus(data: str | os.PathLike, split: str = "train", encoding_errors: str = "strict") -> Corpus:
    """Read every labelled document of `split` from a folder or an archive.

    Args:
        data: root folder, split folder, or archive of either (see module docstring).
        split: the split folder to use when `data` is a root ("train" or "test"); ignored for a
            split folder.
        encoding_errors: "strict" stops on the first non-UTF-8 file; "replace" substitutes U+FFFD.

    Raises:
        CorpusError: path missing, no class folders with `.txt` files, or a file that is not UTF-8
            (the message names the file and the byte offset).
    """
    path = Path(data)
    if not path.exists():
        raise CorpusError(f"--data {path}: no such file or folder")
    if encoding_errors not in ("strict", "replace"):
        raise CorpusError(f"encoding_errors must be 'strict' or 'replace', got {encoding_errors!r}")
    if is_archive(path):
        files, hidden = _archive_files(path)
    elif path.is_dir():
        files, hidden = _folder_files(path)
    else:
        raise CorpusError(f"--data {path}: expected a folder or a .tar.gz/.tgz/.tar archive")
    chosen = _choose_split(files, split, path)
    class_names = sorted({_class_of(p) for p in chosen})
    label_of = {name: i for i, name in enumerate(class_names)}
    texts, labels, paths = [], [], []
    for rel in sorted(chosen):
        texts.append(_decode(chosen[rel](), f"{path}:{rel}" if is_archive(path) else str(path / rel), encoding_errors))
        labels.append(label_of[_class_of(rel)])
        paths.append(rel)
    return Corpus(texts, labels, class_names, paths, sorted(hidden))


def _class_of(rel: str) -> str:
    return PurePosixPath(rel).parent.name


def _decode(raw: bytes, where: str, errors: str) -> str:
    try:
        return decode_utf8(raw, errors)
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{where}: not valid UTF-8 at byte {err.start} ({err.reason}); "
            "fix the file or pass --encoding-errors replace"
        ) from None


def _hidden(name: str) -> bool:
    return name.startswith(".") and name not in (".", "..")


def _folder_files(root: Path) -> tuple[dict[str, callable], set[str]]:
    """Map 'relative/posix/path.txt' -> a reader, for every .txt at depth >= 2 below root; and the
    hidden entries skipped (a hidden folder is not entered)."""
    files, hidden = {}, set()
    for dirpath, dirs, names in os.walk(root):
        hidden.update(Path(dirpath, d).relative_to(root).as_posix() for d in dirs if _hidden(d))
        dirs[:] = [d for d in dirs if not _hidden(d)]
        for name in names:
            if _hidden(name):
                hidden.add(Path(dirpath, name).relative_to(root).as_posix())
            elif name.endswith(".txt"):
                full = Path(dirpath, name)
                rel = full.relative_to(root).as_posix()
                if rel.count("/") >= 1:
                    files[rel] = full.read_bytes
    return files, hidden


def _archive_files(archive: Path) -> tuple[dict[str, callable], set[str]]:
    """Map member path -> its bytes, for every .txt member of the archive (read once, in memory); and the
    hidden entries skipped (the path up to its first hidden part, so a hidden folder counts once)."""
    files, hidden = {}, set()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                first_hidden = next((i for i, part in enumerate(parts) if _hidden(part)), None)
                if first_hidden is not None:
                    hidden.add("/".join(p for p in parts[: first_hidden + 1] if p != "."))
                elif member.isfile() and member.name.endswith(".txt") and "/" in member.name:
                    data = tar.extractfile(member).read()
                    files[member.name.lstrip("./")] = (lambda d=data: d)
    except (tarfile.TarError, EOFError, OSError) as err:
        first, *rest = [line.strip("- ") for line in str(err).splitlines() if line.strip()] or [""]
        detail = " ".join([first, "; ".join(rest)]).strip()  # one line (tarfile lists each method tried)
        raise CorpusError(f"--data {archive}: cannot read archive ({detail})") from None
    return files, hidden


def _choose_split(files: dict, split: str, where: Path) -> dict:
    """Keep the documents of one split: `<prefix>/<split>/<class>/<doc>.txt` or `<prefix>/<class>/<doc>.txt`."""
    by_split_dir: dict[str, dict] = {}
    for rel, reader in files.items():
        p = PurePosixPath(rel)
        if p.parent.name in UNLABELLED:
            continue
        by_split_dir.setdefault(str(p.parent.parent), {})[rel] = reader
    named = {d: f for d, f in by_split_dir.items() if PurePosixPath(d).name == split}
    if len(named) == 1:
        chosen = next(iter(named.values()))
    elif len(by_split_dir) == 1 and not any(PurePosixPath(d).name in ("train", "test") for d in by_split_dir):
        chosen = next(iter(by_split_dir.values()))
    else:
        found = (f"found split folders: {sorted(PurePosixPath(d).name or '.' for d in by_split_dir)}" if by_split_dir
                 else "found no .txt file in a class sub-folder")
        raise CorpusError(
            f"--data {where}: no split folder {split!r} with class sub-folders of .txt files "
            f"({found}); expected <root>/{split}/<class>/*.txt or <split>/<class>/*.txt"
        )
    classes = {_class_of(rel) for rel in chosen}
    if len(classes) < 2:
        raise CorpusError(f"--data {where}: split {split!r} has {len(classes)} class folder(s) {sorted(classes)}; need at least 2")
    return chosen
