"""loopynet: recurrent neural networks over text (NLP in Action ch. 8, and beyond).

The public API is imported lazily, so `import loopynet.cli` (the `loopynet` command) does not
load torch before it has parsed its arguments and set its environment.
"""

__version__ = "0.1.0"

__all__ = ["Classifier", "DataConfig", "ModelConfig", "TrainConfig", "__version__"]


def __getattr__(name: str):
    if name == "Classifier":
        from loopynet.classifier import Classifier

        return Classifier
    if name in ("DataConfig", "ModelConfig", "TrainConfig"):
        from loopynet import config

        return getattr(config, name)
    raise AttributeError(f"module 'loopynet' has no attribute {name!r}")
