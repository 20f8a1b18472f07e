"""`loopynet export MODEL --format keras --out FILE.keras`: a loopynet classifier as a Keras 3 model.

The Keras model takes token ids (batch, maxlen) int32, post-padded with 0, numbered as in the model
folder's vocab.json, and outputs P(class_names[1]) (batch, 1):

    Input(maxlen) -> Embedding(V, E, frozen word vectors, mask_zero) -> [SimpleRNN|GRU|LSTM, optionally
    Bidirectional(concat)] x layers, each followed by Dropout -> Flatten | max | mean | (last state)
    -> Dense(1, sigmoid)

Padding: loopynet's padding-safe heads (last/mean/max) and its backward direction read only a review's
real tokens; Keras does the same with `Embedding(mask_zero=True)` (a masked RNN keeps its state over
padded steps and its backward direction starts at the last real token); max and mean pool the real
steps with `keras.ops` (where/max/sum over the ids != 0 mask), as Keras 3's GlobalMaxPooling1D ignores
a mask. The book's Flatten head reads every padded step, so its Embedding has no mask; so does a model
imported from Keras without one (`mask_zero=False`). A bidirectional Flatten model with a mask has no
Keras equivalent (Flatten drops the mask) and is refused, as are n-gram ensembles (not a Keras layer).
Weights are mapped by `loopynet.interop.keras_map.to_keras`. Needs `keras>=3` (`pip install
'loopynet[keras]'`); the backend is $KERAS_BACKEND, torch when unset.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from loopynet.errors import UserError
from loopynet.interop.keras_map import cell_prefix, to_keras
from loopynet.io.atomic import current_umask


class ExportError(UserError, ValueError):
    """A model that this format cannot express, a bad output path, or a missing optional package."""


def export_keras(model_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the classifier in `model_dir` as a Keras 3 `.keras` archive at `out` (atomically).

    Raises:
        ExportError: `out` does not end in .keras or its folder is missing, keras is not installed,
            or the network has no Keras equivalent (the reason is named).
        ArtifactError: an unreadable model folder.
    """
    from loopynet.tasks.classification.api import Classifier

    out = Path(out)
    if out.suffix != ".keras":
        raise ExportError(f"--out {out}: a Keras 3 model file must end in .keras")
    if not out.parent.is_dir():
        raise ExportError(f"--out {out}: folder {out.parent} does not exist")
    clf = Classifier.load(model_dir)
    config = clf.model.config
    if config.ngram:
        raise ExportError(f"{model_dir}: an n-gram ensemble (ngram={config.ngram}) has no Keras equivalent")
    if config.members > 1:
        raise ExportError(f"{model_dir}: a seed ensemble (members={config.members}) has no single Keras equivalent")
    if config.head == "concat":
        raise ExportError(f"{model_dir}: the concat head (last, max and mean side by side) is not exported to Keras")
    if config.head == "flatten" and config.bidirectional and config.mask_zero:
        raise ExportError(f"{model_dir}: a bidirectional flatten model reverses within each review's length; "
                          "Keras' Flatten cannot take that mask")
    keras = _keras()
    model = build_keras_model(keras, config, clf.model.state_dict())
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".keras")
    os.close(fd)
    try:
        model.save(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ModuleNotFoundError as err:
        raise ExportError(f"{err.name} is not installed; install the extra: pip install 'loopynet[keras]'") from None
    if int(keras.__version__.split(".")[0]) < 3:
        raise ExportError(f"keras {keras.__version__} is installed; --format keras writes Keras 3 files (keras>=3)")
    return keras


def build_keras_model(keras, config, state: dict):
    """The Keras functional model of a classifier's `config` with the weights of its `state` dict."""
    layers, ops = keras.layers, keras.ops
    state = {k: v.detach().cpu().numpy() for k, v in state.items()}
    mask_zero = config.mask_zero and config.head != "flatten"
    cell = {"rnn": layers.SimpleRNN, "gru": layers.GRU, "lstm": layers.LSTM}[config.cell]
    ids = keras.Input(shape=(config.maxlen,), dtype="int32", name="ids")
    x = layers.Embedding(*state["embeddings"].shape, mask_zero=mask_zero, trainable=False, name="embedding")(ids)
    recurrent = []
    for depth in range(config.layers):
        sequences = depth < config.layers - 1 or config.head != "last"
        layer = cell(config.units, return_sequences=sequences, name=f"{config.cell}_{depth}")
        if config.bidirectional:
            layer = layers.Bidirectional(layer, merge_mode="concat", name=f"bidirectional_{depth}")
        recurrent.append(layer)
        x = layers.Dropout(config.dropout)(layer(x))
    x = _head(keras, config.head, x, ops.expand_dims(ops.not_equal(ids, 0), -1) if mask_zero else None)
    dense = layers.Dense(1, activation="sigmoid", name="dense")
    model = keras.Model(ids, dense(x))
    model.get_layer("embedding").set_weights([state["embeddings"]])
    for depth, layer in enumerate(recurrent):
        weights = []
        for direction in range(2 if config.bidirectional else 1):
            prefix = cell_prefix(config, depth, direction)
            tensors = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            weights += to_keras(config.cell, tensors, config.units)
        layer.set_weights([np.asarray(w, np.float32) for w in weights])
    dense.set_weights([state["dense_kernel"], state["dense_bias"]])
    return model


def _head(keras, head: str, x, mask):
    """(batch, time, D) outputs -> (batch, D) features. With `mask` (batch, time, 1) mean and max read
    only the real steps and an empty review gives zeros, as loopynet's heads (Keras' own pooling
    layers ignore the mask or divide by a zero count)."""
    layers, ops = keras.layers, keras.ops
    if head == "last":
        return x
    if head == "flatten":
        return layers.Flatten()(x)
    if mask is None:
        return (layers.GlobalMaxPooling1D() if head == "max" else layers.GlobalAveragePooling1D())(x)
    if head == "mean":
        count = ops.maximum(ops.sum(ops.cast(mask, x.dtype), axis=1), 1.0)
        return ops.sum(ops.where(mask, x, 0.0), axis=1) / count
    return ops.where(ops.any(mask, axis=1), ops.max(ops.where(mask, x, float("-inf")), axis=1), 0.0)
