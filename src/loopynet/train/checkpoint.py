"""Training checkpoints: the full training state after each epoch, written atomically.

A checkpoint is internal state (model, optimizer, random generators, history, the run's full
settings and runtime), not a model folder; it lives in its own folder and is read back with
`torch.load(weights_only=True)`. A resume must use the settings that wrote it: `check_resume` refuses
any difference, naming each setting with both values, except the ones in RESUMABLE.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path

import torch

from loopynet.errors import UserError
from loopynet.io.atomic import atomic_file

CHECKPOINT = "last.pt"


def save_checkpoint(folder: str | Path, state: dict) -> Path:
    """Write `state` to folder/last.pt (temp file + rename: a kill never leaves half a checkpoint)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_file(folder / CHECKPOINT) as f:
        torch.save(state, f)
    return folder / CHECKPOINT


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be read, or that another run's settings wrote."""


def load_checkpoint(folder: str | Path) -> dict | None:
    """The state saved in folder/last.pt, or None when there is none.

    Raises:
        CheckpointError: the file is truncated or not a loopynet checkpoint.
    """
    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        return None
    try:
        state = torch.load(path, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as err:
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(err).__name__}); remove it to start "
                              "afresh, or train without --resume") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path} is not a loopynet training checkpoint")
    return state


RESUMABLE = ("train.epochs",)  # a longer or shorter run continues the same epochs; config.json records the new value
MOVED = {"data.maxlen": "model.maxlen"}  # settings that moved since checkpoints recorded them: old key -> new key


def flatten(settings: dict, prefix: str = "") -> dict:
    """{"train": {"lr": 1e-3}} -> {"train.lr": 1e-3}."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_resume(folder: str | Path, settings: dict) -> dict | None:
    """The checkpoint in `folder` (None when there is none), after checking that it was written with
    `settings` (nested dicts of JSON values: data, model and train configs, data and vectors files).

    Raises:
        CheckpointError: unreadable, written by a loopynet that did not record its settings, or with
            other settings (each named: "train.lr: checkpoint 0.001, now 0.01").
    """
    state = load_checkpoint(folder)
    if state is None:
        return None
    if "settings" not in state:
        raise CheckpointError(f"the checkpoint in {folder} was written by an older loopynet that did not record its "
                              "settings, so resuming cannot be checked; remove it to start afresh")
    old, new = flatten(state["settings"]), flatten(settings)
    for key, moved_to in MOVED.items():  # the old key held the value training used
        if key in old and key not in new:
            old[moved_to] = old.pop(key)
    differences = [f"{key}: checkpoint {old.get(key)!r}, now {new.get(key)!r}" for key in sorted(old.keys() | new.keys())
                   if key not in RESUMABLE and old.get(key) != new.get(key)]
    if differences:
        raise CheckpointError(f"cannot resume from {folder}: it was written with other settings ("
                              + "; ".join(differences) + "); resume with the same settings, or remove the checkpoint "
                              "folder to start afresh")
    return state


def checked_settings(files: dict[str, str | os.PathLike | None], configs: dict,
                     checkpoint_dir: str | os.PathLike | None, resume: bool, **extra) -> dict:
    """`run_settings(files, configs, **extra)`, checked first (with `resume` and a `checkpoint_dir`) against
    the checkpoint there, so that resuming with other settings stops before any data is read.

    Raises:
        CheckpointError: as `check_resume`.
    """
    settings = run_settings(files, configs, **extra)
    if resume and checkpoint_dir is not None:
        check_resume(checkpoint_dir, settings)
    return settings


def run_settings(files: dict[str, str | os.PathLike | None], configs: dict, **extra) -> dict:
    """A run's identity for `check_resume`: each input file's absolute path and size in bytes (None
    when it does not exist), each config dataclass's fields, and `extra` JSON values."""
    def identity(path):
        if path is None:
            return None
        path = Path(path)
        return {"path": os.path.abspath(path), "bytes": path.stat().st_size if path.is_file() else None}
    return ({name: identity(path) for name, path in files.items()}
            | {name: None if c is None else dataclasses.asdict(c) for name, c in configs.items()} | extra)
