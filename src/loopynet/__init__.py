"""loopynet: recurrent neural networks over text (NLP in Action ch. 8, and beyond)."""

__version__ = "0.1.0"

from loopynet.classifier import Classifier  # noqa: E402
from loopynet.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402

__all__ = ["Classifier", "DataConfig", "ModelConfig", "TrainConfig", "__version__"]
