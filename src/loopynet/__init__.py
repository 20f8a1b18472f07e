"""loopynet: recurrent neural networks over text (NLP in Action ch. 8, and beyond).

The public API is imported lazily, so `import loopynet.cli` (the `loopynet` command) does not
load torch before it has parsed its arguments and set its environment.
"""

from loopynet.version import __version__

_CONFIGS = ("DataConfig", "ModelConfig", "TrainConfig", "NgramConfig", "TaggerConfig", "TaggerDataConfig")
__all__ = ["Classifier", "Tagger", *_CONFIGS, "__version__"]


def __getattr__(name: str):
    if name == "Classifier":
        from loopynet.tasks.classification.api import Classifier

        return Classifier
    if name == "Tagger":
        from loopynet.tasks.tagging.api import Tagger

        return Tagger
    if name in _CONFIGS:
        from loopynet import config

        return getattr(config, name)
    raise AttributeError(f"module 'loopynet' has no attribute {name!r}")
