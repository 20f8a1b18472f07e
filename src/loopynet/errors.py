"""Errors that mean bad input or a failed run, reported by the CLI as one clear line (exit 2)."""

from loopynet.data.corpus import CorpusError
from loopynet.data.fetch import FetchError
from loopynet.data.vectors import VectorsError
from loopynet.io.artifact import ArtifactError
from loopynet.train.loop import TrainingError

USER_ERRORS = (CorpusError, VectorsError, ArtifactError, TrainingError, FetchError, ValueError, OSError)
