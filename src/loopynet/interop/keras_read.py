"""Readers for Keras model files with h5py, json and zipfile only (no TensorFlow, no Keras needed).

What each format holds (as written by Keras 2.x / tf-keras and Keras 3):

- Keras 2 model JSON (`model.to_json()`, the book's `simplernn_model1.json`): `{"class_name": "Sequential",
  "config": {"layers": [...]}}`, or in Keras 2.0-2.2 `"config": [...]` (a bare list); the first layer
  carries `batch_input_shape` (`input_shape=(maxlen, embedding_dims)` in the book's code). Class names
  may be dotted (`keras.layers.wrappers.Bidirectional`): the last part is the layer kind.
- Keras 2 `save_weights` HDF5 (the book's `simplernn_weights1.h5`): root attribute `layer_names`, one
  group per layer whose attribute `weight_names` (e.g. `simple_rnn_1/kernel:0`) names its datasets in
  the layer's weight order (Bidirectional: the forward layer's, then the backward layer's).
- Keras 2 full-model `.h5` (`model.save("m.h5")`): root attribute `model_config` (the JSON above) and
  the weights, laid out as above, in the group `model_weights`.
- Keras 3 JSON (`model.to_json()`): layers with `module`/`registered_name`, an `InputLayer` with
  `batch_shape` first.
- Keras 3 `.weights.h5` (`model.save_weights`): a group per layer under `layers/` (named by kind; the
  layer's name is the `name` attribute of its `vars` group) holding the layer's own variables in
  `vars/0, 1, ...` and its children's (`cell`, `forward_layer`, `backward_layer`) below.
- Keras 3 `.keras` (`model.save`): a zip archive of `config.json`, `metadata.json`, `model.weights.h5`.

Every reader returns a `KerasModel`: the layers in order (InputLayer left out) with their configs and
weights in Keras' `layer.weights` order, and the input's batch shape (batch, time, features).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from loopynet.errors import UserError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"


class KerasFileError(UserError, ValueError):
    """A Keras file that is missing, damaged, not Keras', or does not match its companion file."""


@dataclass
class KerasLayer:
    """One layer: `kind` is the class name without its module ("SimpleRNN", "Bidirectional", ...);
    `weights[i]` is named `weight_names[i]` (Keras 2: as stored, Keras 3: the variable's path)."""

    kind: str
    name: str
    config: dict
    weights: list[np.ndarray] = field(default_factory=list)
    weight_names: list[str] = field(default_factory=list)


@dataclass
class KerasModel:
    """A Sequential Keras model: `layers` without the InputLayer; `batch_shape` (batch, time, features)
    with None for an unknown size; `source` says which format and Keras version it came from."""

    layers: list[KerasLayer]
    batch_shape: tuple
    source: dict


def read_keras(path: str | Path, weights: str | Path | None = None) -> KerasModel:
    """Read a Keras model: a `.keras` archive, a full-model `.h5`, or a model JSON with its weights file
    (a Keras 2 `save_weights` `.h5` or a Keras 3 `.weights.h5`).

    Raises:
        KerasFileError: a missing or unreadable file, a JSON without weights, a weights file given as
            the model, an HDF5 or zip file that is not Keras', a truncated archive (one line, naming it).
    """
    path = Path(path)
    head = _head(path)
    if head.startswith(ZIP_MAGIC):
        _no_second_file(path, weights, "a .keras archive holds its weights")
        return _read_archive(path)
    if head.startswith(HDF5_MAGIC):
        with _open_h5(path) as f:
            if "model_config" not in f.attrs:
                raise KerasFileError(f"{path} holds no model (no model_config attribute): pass the model's JSON "
                                     "first and this weights file second" if _weights_layout(f) else
                                     f"{path} is an HDF5 file but not a Keras model or weights file "
                                     "(no model_config or layer_names attribute, no layers group)")
            _no_second_file(path, weights, "a full-model .h5 holds its weights")
            arch = _json(f.attrs["model_config"], path)
            group = f["model_weights"] if "model_weights" in f else None
            if group is None:
                raise KerasFileError(f"{path} holds a model without weights (no model_weights group)")
            return _assemble(arch, group, path, "full-model-h5")
    arch = _json(path.read_bytes(), path)
    if weights is None:
        raise KerasFileError(f"{path} is a model JSON, which holds no weights: pass its weights file too "
                             f"(loopynet import keras {path.name} WEIGHTS.h5)")
    weights = Path(weights)
    if not _head(weights).startswith(HDF5_MAGIC):
        raise KerasFileError(f"{weights} is not an HDF5 file: expected Keras weights (.h5 or .weights.h5)")
    with _open_h5(weights) as f:
        layout = _weights_layout(f)
        if layout is None:
            raise KerasFileError(f"{weights} is an HDF5 file but not Keras weights (no layer_names attribute, "
                                 "no layers group)")
        return _assemble(arch, f, path, f"{'keras2' if layout == 'keras2' else 'keras3'}-json+weights")


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(8)
    except OSError as err:
        raise KerasFileError(f"{path}: cannot read it ({err.strerror or err})") from None


def _no_second_file(path: Path, weights, why: str) -> None:
    if weights is not None:
        raise KerasFileError(f"{path}: {why}; give it alone (a second file, {weights}, was given)")


def _open_h5(source, label=None) -> h5py.File:
    try:
        return h5py.File(source, "r")
    except OSError as err:
        raise KerasFileError(f"{label or source}: not a readable HDF5 file ({err})") from None


def _json(raw, path) -> dict:
    try:
        arch = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, ValueError) as err:
        raise KerasFileError(f"{path}: neither a Keras model JSON nor an HDF5/zip Keras file ({err})") from None
    if not (isinstance(arch, dict) and "class_name" in arch and "config" in arch):
        raise KerasFileError(f"{path}: JSON without class_name and config: not a Keras model JSON")
    return arch


def _weights_layout(f: h5py.Group) -> str | None:
    if "layer_names" in f.attrs or "layer_names0" in f.attrs:
        return "keras2"
    return "keras3" if isinstance(f.get("layers"), h5py.Group) else None


def _read_archive(path: Path) -> KerasModel:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [n for n in ("config.json", "model.weights.h5") if n not in names]
            if missing:
                raise KerasFileError(f"{path} is a zip archive but not a .keras model (missing {missing})")
            arch = _json(archive.read("config.json"), f"{path}:config.json")
            metadata = json.loads(archive.read("metadata.json")) if "metadata.json" in names else {}
            weights = archive.read("model.weights.h5")
    except (zipfile.BadZipFile, EOFError, OSError, zipfile.LargeZipFile) as err:
        raise KerasFileError(f"{path}: damaged or truncated .keras archive ({err})") from None
    with _open_h5(io.BytesIO(weights), f"{path}:model.weights.h5") as f:
        model = _assemble(arch, f, path, "keras3-archive")
    model.source["keras_version"] = metadata.get("keras_version", model.source["keras_version"])
    return model


def _assemble(arch: dict, weights: h5py.Group, path: Path, fmt: str) -> KerasModel:
    try:
        layers, batch_shape = layers_of(arch, path)
        if _weights_layout(weights) == "keras2":
            _attach_keras2(layers, weights, path)
        else:
            _attach_keras3(layers, weights["layers"], path)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as err:
        if isinstance(err, KerasFileError):
            raise
        raise KerasFileError(f"{path}: not a Keras model layout that loopynet reads ({type(err).__name__}: "
                             f"{err})") from None
    return KerasModel(layers, batch_shape, {"format": fmt, "file": Path(path).name,
                                            "keras_version": arch.get("keras_version", "")})


def kind_of(class_name: str) -> str:
    """`keras.layers.wrappers.Bidirectional` -> `Bidirectional`."""
    return str(class_name).rsplit(".", 1)[-1]


def layers_of(arch: dict, path) -> tuple[list[KerasLayer], tuple]:
    """The layers of a Sequential model's JSON and its input's batch shape (batch, time, features).

    Raises:
        KerasFileError: not a Sequential model, or no layer says its input shape.
    """
    if kind_of(arch["class_name"]) != "Sequential":
        raise KerasFileError(f"{path}: a {kind_of(arch['class_name'])} model; loopynet imports Sequential models")
    config = arch["config"]
    entries = config if isinstance(config, list) else config.get("layers", [])
    layers, batch_shape = [], None
    for entry in entries:
        kind, layer_config = kind_of(entry["class_name"]), entry.get("config", {})
        if batch_shape is None:
            batch_shape = _declared_shape(layer_config)
        if kind != "InputLayer":
            layers.append(KerasLayer(kind, layer_config.get("name", kind.lower()), layer_config))
    if batch_shape is None and isinstance(config, dict) and config.get("build_input_shape"):
        batch_shape = tuple(config["build_input_shape"])
    if batch_shape is None or len(batch_shape) != 3:
        raise KerasFileError(f"{path}: the model's input shape is {batch_shape}; expected (batch, time, features) "
                             "on its first layer (batch_input_shape / input_shape / an InputLayer)")
    return layers, tuple(batch_shape)


def _declared_shape(config: dict) -> tuple | None:
    for key in ("batch_shape", "batch_input_shape"):
        if config.get(key):
            return tuple(config[key])
    return (None, *config["input_shape"]) if config.get("input_shape") else None


def _attrs(group: h5py.Group, name: str) -> list[str]:
    """An attribute holding a list of names; Keras 2 splits long ones into name0, name1, ..."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            values += list(group.attrs[f"{name}{chunk}"])
            chunk += 1
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _attach_keras2(layers: list[KerasLayer], group: h5py.Group, path) -> None:
    stored = _attrs(group, "layer_names")
    stored_with_weights = [n for n in stored if _attrs(group[n], "weight_names")]
    names = {layer.name for layer in layers}
    extra = [n for n in stored_with_weights if n not in names]
    if extra:
        raise KerasFileError(f"the weights file has weights for layers the model JSON {Path(path).name} does not "
                             f"have: {extra} (the model has {[layer.name for layer in layers]})")
    for layer in layers:
        if layer.name in stored:
            layer.weight_names = _attrs(group[layer.name], "weight_names")
            layer.weights = [np.asarray(group[layer.name][w]) for w in layer.weight_names]


def _attach_keras3(layers: list[KerasLayer], group: h5py.Group, path) -> None:
    """Keras 3 names a layer's group by its kind (`layers/dense`, `layers/dense_1`, ...); the layer's own
    name is the `name` attribute of its `vars` group."""
    by_name = {_layer_name(group[key], key): group[key] for key in group if isinstance(group[key], h5py.Group)}
    names = {layer.name for layer in layers}
    extra = [n for n, g in by_name.items() if n not in names and _variables(g)]
    if extra:
        raise KerasFileError(f"the weights file has weights for layers the model {Path(path).name} does not "
                             f"have: {extra} (the model has {[layer.name for layer in layers]})")
    for layer in layers:
        if layer.name in by_name:
            found = _variables(by_name[layer.name])
            layer.weight_names = [name for name, _ in found]
            layer.weights = [value for _, value in found]


def _layer_name(group: h5py.Group, key: str) -> str:
    name = group["vars"].attrs.get("name", key) if isinstance(group.get("vars"), h5py.Group) else key
    return name.decode("utf-8") if isinstance(name, bytes) else str(name)


def _variables(group: h5py.Group, prefix: str = "") -> list[tuple[str, np.ndarray]]:
    """A Keras 3 layer's variables in `layer.weights` order: its own `vars/0, 1, ...`, then its children
    (`forward_layer` before `backward_layer`)."""
    found = []
    if isinstance(group.get("vars"), h5py.Group):
        found += [(f"{prefix}vars/{k}", np.asarray(group["vars"][k])) for k in sorted(group["vars"], key=int)]
    children = sorted((k for k in group if k != "vars" and isinstance(group[k], h5py.Group)),
                      key=lambda k: (k != "forward_layer", k))
    for child in children:
        found += _variables(group[child], f"{prefix}{child}/")
    return found
