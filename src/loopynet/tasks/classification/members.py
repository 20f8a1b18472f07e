"""Training a classifier network, one member after the other when it is a seed ensemble
(`loopynet.models.ensemble.SeedEnsemble`, `--members K`).

Member k is trained by the ordinary loop (`loopynet.train.loop.fit`) alone, with TrainConfig seed + k
(its batch order, dropout masks; its initial weights came from seed + k too), so member 0 is exactly
the single network of the same settings. With a checkpoint folder, member k checkpoints into its
subfolder `member-k`, so `--resume` continues a killed ensemble run at the member it was training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from loopynet.config import TrainConfig
from loopynet.models.base import Network
from loopynet.models.ensemble import SeedEnsemble
from loopynet.models.ngram import NgramEnsemble
from loopynet.tasks.classification.task import classification_task
from loopynet.train.loop import fit


def fit_classifier(model: Network, maxlen: int, config: TrainConfig, train, validation, *, progress: bool = True,
                   on_epoch_end: Callable[[dict], None] | None = None, checkpoint_dir: str | Path | None = None,
                   resume: bool = False, settings: dict | None = None,
                   log: Callable[[str], None] = print) -> list[dict]:
    """Train `model` (its recurrent part for an `NgramEnsemble`) as `fit` does; returns the history.

    A seed ensemble's history holds every member's epoch records, each with "member": k, then one record
    {"member": "ensemble", "val_loss", "val_accuracy"} of the averaged logits on `validation` (when given).
    """
    ensemble = model.rnn if isinstance(model, NgramEnsemble) else model
    if not isinstance(ensemble, SeedEnsemble):
        return fit(model, classification_task(model, maxlen), config, train, validation, progress=progress,
                   on_epoch_end=on_epoch_end, checkpoint_dir=checkpoint_dir, resume=resume, settings=settings)
    history = []
    for k, member in enumerate(ensemble.members):
        folder = None if checkpoint_dir is None else Path(checkpoint_dir) / f"member-{k}"
        member_settings = None if settings is None else {**settings, "member": k}
        records = fit(member, classification_task(member, member.config.maxlen), replace(config, seed=config.seed + k),
                      train, validation, progress=progress, on_epoch_end=on_epoch_end, checkpoint_dir=folder,
                      resume=resume, settings=member_settings)
        history += [{"member": k, **record} for record in records]
        kept = next((r for r in records if r.get("kept")), records[-1] if records else {})
        if "val_accuracy" in kept:
            log(f"member {k + 1}/{len(ensemble.members)}: val_accuracy {kept['val_accuracy']:.4f} (epoch {kept['epoch']})")
    if validation is not None and len(validation) and history:
        record = classification_task(ensemble, ensemble.config.maxlen).validate(ensemble, validation)
        history.append({"member": "ensemble", **record})
        log(f"ensemble of {len(ensemble.members)}: val_loss {record['val_loss']:.4f} "
            f"val_accuracy {record['val_accuracy']:.4f}")
    return history
