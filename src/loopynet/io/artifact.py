"""Model folders: config.json + model.safetensors + vocab.json + history.json + data_report.json.

Artifacts are data, not code. A folder is written to a temporary sibling and renamed into place,
so a killed run never leaves a folder that loads half; loading checks the format version, the weights
file's SHA-256 recorded in config.json (a damaged or replaced file is refused), that every weight is
finite (naming the first tensor that is not), and every tensor's shape against the config.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from loopynet.errors import UserError
from loopynet.io.atomic import atomic_file, current_umask

FORMAT = "loopynet-model"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
FILES = ("config.json", WEIGHTS, "vocab.json", "history.json", "data_report.json")


class ArtifactError(UserError, ValueError):
    """A model folder that is missing, incomplete, from another format version, or inconsistent."""


def write_json(path: Path, value) -> None:
    """Write JSON atomically (temp file + rename)."""
    with atomic_file(path, "w") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
        f.write("\n")


def check_out(out: str | os.PathLike) -> Path:
    """Check that a model folder may be written at `out` (call it before a long run, and it is called
    again when saving): `out` must not exist, or be an empty folder, or be a loopynet model folder
    (config.json with format "loopynet-model", any version), which is then replaced.

    Raises:
        ArtifactError: `out` is a file, a folder with other contents, or the working folder or one of
            its parents (which cannot be swapped out).
    """
    out = Path(out)
    if not out.exists() and not out.is_symlink():
        return out
    folder = out.is_dir() and not out.is_symlink()
    if folder and Path.cwd().resolve().is_relative_to(out.resolve()):
        raise ArtifactError(f"--out {out} is the working folder or contains it; name a new folder, e.g. {out / 'model'}")
    if folder and (not any(out.iterdir()) or _is_model_folder(out)):
        return out
    what = "a folder that is not a loopynet model folder" if folder else "a file"
    raise ArtifactError(f"--out {out} exists and is {what}; refusing to replace it (nothing was written): "
                        "name a new folder, or remove it yourself")


def _is_model_folder(path: Path) -> bool:
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("format") == FORMAT


def save_folder(out: str | os.PathLike, config: dict, tensors: dict[str, torch.Tensor], vocab: list[str],
                history: list[dict], data_report: dict) -> Path:
    """Write a complete model folder at `out` atomically, replacing an existing model folder.

    `config` gets `format`, `format_version` and `weights` (the file name, its size in bytes and its
    SHA-256, checked by `read_folder`) added. Non-finite weights are refused: a model that cannot
    give a probability is never saved.

    Raises:
        ArtifactError: `out` exists and is not an empty folder or a model folder (see `check_out`), or a
            tensor holds NaN or infinity.
    """
    out = check_out(out)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    check_finite(out, tensors)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes it 0700: give it a normal folder's mode
        save_file(tensors, str(tmp / WEIGHTS))
        os.chmod(tmp / WEIGHTS, 0o666 & ~current_umask())  # safetensors writes it 0600
        weights = {"file": WEIGHTS, "bytes": (tmp / WEIGHTS).stat().st_size, "sha256": sha256_file(tmp / WEIGHTS)}
        write_json(tmp / "config.json", {"format": FORMAT, "format_version": FORMAT_VERSION, **config, "weights": weights})
        write_json(tmp / "vocab.json", vocab)
        write_json(tmp / "history.json", history)
        write_json(tmp / "data_report.json", data_report)
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _swap_into_place(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def read_folder(path: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor], list[str]]:
    """Read (config, tensors, vocab) of a model folder; the format is checked before the weights are read.

    Folders written before config.json recorded the weights' SHA-256 (no "weights" key) load without
    the checksum test; the finiteness test applies to all.

    Raises:
        ArtifactError: missing folder or file, another format or format version, unreadable file, a
            weights file whose SHA-256 differs from the one recorded, a tensor holding NaN or infinity.
    """
    path = _complete_folder(path)
    config, vocab = _read_json(path, "config.json"), _read_json(path, "vocab.json")
    if not isinstance(config, dict) or not isinstance(vocab, list):
        raise ArtifactError(f"model folder {path}: config.json must hold an object and vocab.json a list")
    if config.get("format") != FORMAT or config.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"model folder {path} has format {config.get('format')!r} version {config.get('format_version')!r}; "
            f"this loopynet reads {FORMAT!r} version {FORMAT_VERSION} (written by loopynet "
            f"{config.get('loopynet_version', '?')}); retrain it or use that loopynet version"
        )
    _check_checksum(path, config.get("weights"))
    try:
        tensors = load_file(str(path / WEIGHTS))
    except (SafetensorError, OSError) as err:
        raise ArtifactError(f"model folder {path}: {WEIGHTS} is unreadable or truncated ({err})") from None
    check_finite(path, tensors)
    return config, tensors, vocab


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in `chunk`-byte pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _check_checksum(path: Path, recorded) -> None:
    if recorded is None:
        return
    if not (isinstance(recorded, dict) and isinstance(recorded.get("sha256"), str)):
        raise ArtifactError(f"model folder {path}: config.json's \"weights\" entry is damaged ({recorded!r})")
    size = (path / WEIGHTS).stat().st_size
    if recorded.get("bytes") not in (None, size):
        raise ArtifactError(f"model folder {path}: {WEIGHTS} has {size:,} bytes, config.json recorded "
                            f"{recorded['bytes']:,}: the file is truncated or was replaced after saving; restore the "
                            "folder from a copy or retrain")
    found = sha256_file(path / WEIGHTS)
    if found != recorded["sha256"]:
        raise ArtifactError(f"model folder {path}: {WEIGHTS} has SHA-256 {found[:16]}..., config.json recorded "
                            f"{recorded['sha256'][:16]}...: the weights were damaged or replaced after saving; "
                            "restore the folder from a copy or retrain")


def check_finite(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Raise ArtifactError naming the first floating-point tensor that holds NaN or infinity."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ArtifactError(f"model folder {path}: tensor {name} holds {bad} NaN or infinite value(s) of "
                                f"{tensor.numel()}; a model with them cannot give probabilities")


def read_config(path: str | os.PathLike) -> dict:
    """The config.json object of a complete model folder, without reading its weights.

    Raises:
        ArtifactError: missing folder or file, unreadable JSON, or not an object.
    """
    config = _read_json(_complete_folder(path), "config.json")
    if not isinstance(config, dict):
        raise ArtifactError(f"model folder {path}: config.json must hold an object")
    return config


def read_records(path: str | os.PathLike) -> tuple[list[dict], dict]:
    """(history, data report) of a model folder, without reading its weights.

    Raises:
        ArtifactError: missing folder or file, unreadable JSON.
    """
    path = _complete_folder(path)
    return _read_json(path, "history.json"), _read_json(path, "data_report.json")


def _complete_folder(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"model folder {path} " + ("is a file, not a folder" if path.exists() else "does not exist"))
    missing = [name for name in FILES if not (path / name).is_file()]
    if len(missing) == len(FILES):
        raise ArtifactError(f"{path} is not a loopynet model folder (it has none of {list(FILES)}); pass the "
                            "folder that train's --out wrote")
    if missing:
        raise ArtifactError(f"model folder {path} is incomplete: missing {missing}")
    return path


def _read_json(folder: Path, name: str):
    try:
        return json.loads((folder / name).read_text(encoding="utf-8"))
    except (ValueError, OSError) as err:
        raise ArtifactError(f"model folder {folder}: {name} is unreadable ({err})") from None


def check_tensors(path: Path, expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> None:
    """Raise ArtifactError naming every missing, unexpected or differently shaped tensor."""
    problems = [f"missing {k}" for k in expected if k not in found]
    problems += [f"unexpected {k}" for k in found if k not in expected]
    problems += [f"{k}: file has {tuple(found[k].shape)}, config implies {tuple(v.shape)}"
                 for k, v in expected.items() if k in found and found[k].shape != v.shape]
    if problems:
        raise ArtifactError(f"model folder {path} does not match its config.json: " + "; ".join(problems))


def weights_version(path: str | os.PathLike) -> str:
    """The first 12 hex digits of the SHA-256 of the folder's model.safetensors: a version that changes
    whenever the weights do."""
    return sha256_file(Path(path) / "model.safetensors")[:12]
