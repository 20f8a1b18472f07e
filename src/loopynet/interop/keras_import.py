"""`loopynet import keras`: a Keras model (the chapter's json + h5 pair, a full-model .h5, a Keras 3 json +
.weights.h5 or .keras) into a loopynet model folder, which then evaluates, predicts and exports like
any other.

The chapter's Keras model takes pre-vectorised input (each token's word vector, NLP in Action 8.1.5),
so the vectors come from `--vectors`: every word of the file (the chapter looks every token up in it),
with loopynet's tokenizer and pipeline options (default: the book's, `BOOK_DATA`) recorded in
config.json, where `origin` also names the Keras files (name, size, sha256), their format and Keras
version. Needs h5py, not TensorFlow or Keras.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from loopynet.config import BOOK_DATA, DataConfig, TrainConfig, check_data
from loopynet.errors import InputError
from loopynet.interop.keras_map import map_model
from loopynet.interop.keras_read import read_keras


def import_keras(model: str | os.PathLike, weights: str | os.PathLike | None, vectors: str | os.PathLike,
                 out: str | os.PathLike, data_config: DataConfig | None = None,
                 class_names: tuple[str, str] = ("neg", "pos"), maxlen: int | None = None,
                 log: Callable[[str], None] = print) -> Path:
    """Import a Keras classifier into the model folder `out` (written atomically) and return its path.

    `data_config` sets the tokenizer, OOV and vector_norm options (default: the book's pipeline); the
    model's maxlen is its input length (or `maxlen` where the model leaves it open).
    Everything is read and checked before anything is written.

    Raises:
        KerasFileError: unreadable, damaged or non-Keras files, a JSON without weights.
        UnsupportedKerasModel: a layer or attribute loopynet cannot express (named).
        InputError: weights that do not match the model (shape named), vectors whose width differs
            from the model's input features, a --maxlen the model contradicts.
        VectorsError, ArtifactError: unreadable vectors; an --out that may not be replaced.
    """
    from loopynet.tasks.classification.api import Classifier
    from loopynet.data.vectors import fingerprint, load_vectors
    from loopynet.data.vocab import vocabulary_from_vectors
    from loopynet.io.artifact import check_out
    from loopynet.models.factory import build_classifier

    data_config = data_config or DataConfig(**BOOK_DATA)
    check_data(data_config)
    if data_config.word_weights != "none":
        raise InputError("word_weights sif needs a corpus' word counts; an imported model's vectors come from "
                         "the vector file alone (word_weights none)")
    check_out(out)
    keras_model = read_keras(model, weights)
    config, tensors = map_model(keras_model, maxlen)
    word_vectors = load_vectors(vectors)
    if word_vectors.embedding_dims != config.embedding_dims:
        raise InputError(f"--vectors {vectors} has {word_vectors.embedding_dims}-dimensional vectors but the Keras "
                         f"model's first layer takes {config.embedding_dims} features per step")
    vocab, embeddings = vocabulary_from_vectors(word_vectors, data_config.oov, data_config.vector_norm)
    network = build_classifier(config, torch.from_numpy(embeddings))
    network.load_state_dict({"embeddings": network.embeddings} |
                            {k: torch.from_numpy(v) for k, v in tensors.items()})
    files = [Path(model)] + ([Path(weights)] if weights is not None else [])
    origin = keras_model.source | {"files": [fingerprint(f) for f in files]}
    clf = Classifier(network.eval(), vocab, list(class_names), data_config,
                     TrainConfig(epochs=0), word_vectors.fingerprint, origin=origin)
    log(f"imported {keras_model.source['format']} model ({config.cell}, {config.layers} layer(s), "
        f"bidirectional={config.bidirectional}, head={config.head}, maxlen={config.maxlen}, "
        f"{len(vocab):,} words)")
    return clf.save(out)
