"""The models a service holds: each model folder loaded once, named, versioned and described."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from loopynet.io.artifact import read_config, read_records, weights_version
from loopynet.tasks.loading import load_model


@dataclass
class ServedModel:
    """A loaded model folder: name (the folder's name), version (12 hex digits of its weights' SHA-256),
    kind ("classifier" or "tagger"), the loaded `Classifier`/`Tagger`, and its description for /v1/models."""

    name: str
    version: str
    kind: str
    model: object
    description: dict

    def run_batch(self, texts: list[str]) -> list:
        """Classifier: P(class_names[1]) per text (floats); tagger: `Tagger.predict`'s dict per text."""
        if self.kind == "tagger":
            return self.model.predict(texts)
        return [float(p) for p in self.model.predict_proba(texts)]

    def run_explain(self, requests: list[tuple[str, int, float | None]]) -> list[dict]:
        """Classifier: per (text, steps, threshold), `Classifier.explain`'s dict with its arrays as lists.

        Raises:
            CompletenessError: Integrated Gradients' completeness error above its tolerance (more steps help).
        """
        from loopynet.explain.explanation import to_json

        return [to_json(self.model.explain([text], steps, threshold)[0]) for text, steps, threshold in requests]


def folder_kinds(folders: list[str | os.PathLike]) -> dict[str, str]:
    """{name: kind} of model folders from their config.json alone (no weights read).

    Raises:
        ArtifactError: a missing or incomplete folder. ValueError: two folders with the same name.
    """
    kinds = {}
    for folder in folders:
        name = Path(folder).resolve().name
        if name in kinds:
            raise ValueError(f"two model folders are named {name!r}; the service names models by folder name")
        kinds[name] = read_config(folder).get("kind", "classifier")
    return kinds


def load_served(folders: list[str | os.PathLike]) -> list[ServedModel]:
    """Load every model folder (in order).

    Raises:
        ArtifactError: a missing, incomplete or damaged folder (the message names it).
        ValueError: two folders with the same name.
    """
    folder_kinds(folders)
    served = []
    for folder in folders:
        model = load_model(folder)
        config = read_config(folder)
        history, report = read_records(folder)
        kind = config.get("kind", "classifier")
        name, version = Path(folder).resolve().name, weights_version(folder)
        description = {"name": name, "version": version, "kind": kind,
                       "labels": config.get("class_names") or config.get("tag_names"),
                       "config": {k: config.get(k) for k in ("model", "data", "train", "vectors", "loopynet_version",
                                                             "torch_version")},
                       "history": history, "data_report": {k: v for k, v in report.items() if k != "seconds"}}
        served.append(ServedModel(name, version, kind, model, description))
    return served
