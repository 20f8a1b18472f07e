"""Training checkpoints: the full training state after each epoch, written atomically.

A checkpoint is internal state (model, optimizer, random generators, history), not a model
folder; it lives in its own folder and is read back with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

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
