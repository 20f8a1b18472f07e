"""Load a model folder of either kind (classifier or tagger), as its config.json says."""

from __future__ import annotations

import os

from loopynet.io.artifact import read_config


def load_model(path: str | os.PathLike):
    """The `Classifier` or `Tagger` saved in the model folder `path`.

    Raises:
        ArtifactError: a missing, incomplete or damaged folder, or one of another kind.
    """
    if read_config(path).get("kind", "classifier") == "tagger":
        from loopynet.tasks.tagging.api import Tagger

        return Tagger.load(path)
    from loopynet.tasks.classification.api import Classifier

    return Classifier.load(path)
