"""Keras layers onto loopynet's classifier networks: a ModelConfig and the network's weights.

Symbols: I input features of a layer (E, the embedding dims, for the first), H units, D = H * directions,
T time steps (maxlen).

What maps (a Sequential model, in this order; anything else stops with one line naming the layer and
the attribute):
    (SimpleRNN | GRU | LSTM | Bidirectional(one of them, merge_mode="concat")) x L, Dropout anywhere,
    then return_sequences=False (head "last") or return_sequences=True followed by Flatten (head
    "flatten"), GlobalMaxPooling1D ("max") or GlobalAveragePooling1D ("mean"), then Dense(1, sigmoid).
All recurrent layers have one kind, one size and one direction setting (loopynet stacks equal layers);
activations must be Keras' defaults (tanh, sigmoid gates), as torch's cells have them fixed.

Weights (Keras `layer.weights` order -> loopynet):
- SimpleRNN: kernel (I, H), recurrent_kernel (H, H), bias (H,) -> loopynet's SimpleRNN, the same three
  tensors (one bias, Keras' layout): the book's network is `BookClassifier` exactly.
- LSTM: kernel (I, 4H), recurrent_kernel (H, 4H), bias (4H,), gate blocks i, f, c, o -> torch.nn.LSTM
  weight_ih (4H, I) = kernel.T and weight_hh = recurrent_kernel.T: torch's blocks i, f, g, o are the same
  gates in the same order (Keras' candidate c is torch's g); bias_ih = bias, bias_hh = 0 (Keras has one
  bias; torch adds its two).
- GRU, reset_after=True (Keras 3's and tf-keras' default): kernel (I, 3H), recurrent_kernel (H, 3H), bias
  (2, 3H) = [input bias; recurrent bias], gate blocks z, r, h -> torch.nn.GRU blocks r, z, n: each tensor's
  blocks reordered, transposed; bias_ih = bias[0], bias_hh = bias[1]. Both compute
  n = tanh(W_n x + b_in + r * (U_n h + b_hn)) and h' = z * h + (1 - z) * n. reset_after=False (Keras
  2's standalone default) applies r before the recurrent product, which torch.nn.GRU cannot: refused.
- Dense(1, sigmoid): kernel (F, 1), bias (1,) -> dense_kernel, dense_bias; the sigmoid becomes loopynet's
  logit -> probability. Flatten's (T, D) -> T*D order is Keras' row-major one in both.

Padding: a Keras model without a mask reads every padded step (post-padded zero vectors, the book's
`pad_trunc`): the forward direction runs on through the padding, "last" is step T-1, the pooling heads
pool all T steps and Bidirectional's backward direction starts at the padded end. The import records
this as `mask_zero=False` (see loopynet.models.recurrent_classifier), never reversing within length.
"""

from __future__ import annotations

import numpy as np

from loopynet.config import ModelConfig
from loopynet.errors import InputError, UserError
from loopynet.interop.keras_read import KerasLayer, KerasModel

CELLS = {"SimpleRNN": "rnn", "GRU": "gru", "LSTM": "lstm"}
HEADS = {"Flatten": "flatten", "GlobalMaxPooling1D": "max", "GlobalAveragePooling1D": "mean"}
SUPPORTED = ("SimpleRNN, GRU, LSTM, Bidirectional, Dropout, Flatten, GlobalMaxPooling1D, GlobalAveragePooling1D "
             "and a final Dense(1, sigmoid)")


class UnsupportedKerasModel(UserError, ValueError):
    """A Keras layer or attribute that loopynet's networks cannot express (the message names both)."""


def _refuse(layer: KerasLayer, what: str) -> UnsupportedKerasModel:
    return UnsupportedKerasModel(f"layer {layer.name!r} ({layer.kind}): {what}")


def map_model(model: KerasModel, maxlen: int | None = None) -> tuple[ModelConfig, dict[str, np.ndarray]]:
    """The ModelConfig (mask_zero=False: Keras' padding semantics) and the weights, named as in the
    state dict of `loopynet.models.factory.build_classifier(config, ...)` (embeddings excluded).

    `maxlen` is needed only when the model's input has no fixed number of time steps and its head is
    not Flatten (whose Dense kernel fixes it).

    Raises:
        UnsupportedKerasModel: a layer or attribute loopynet cannot express.
        InputError (a ValueError): weights that do not match the model (the layer, weight and both shapes
            named), or a maxlen that contradicts the model.
    """
    try:
        return _map(model, maxlen)
    except (KeyError, TypeError, AttributeError, IndexError) as err:  # a config without a needed attribute
        raise UnsupportedKerasModel(f"the model's JSON lacks or garbles an attribute loopynet needs "
                                    f"({type(err).__name__}: {err})") from None


def _map(model: KerasModel, maxlen: int | None) -> tuple[ModelConfig, dict[str, np.ndarray]]:
    recurrent, dropouts, head, dense = _parse(model.layers)
    first = recurrent[0]
    cell, units, bidirectional = first[1], int(first[2]["units"]), first[0].kind == "Bidirectional"
    _, steps, features = model.batch_shape
    if features is None:
        raise _refuse(first[0], "the input's feature size is not given (batch_input_shape [.., .., None])")
    directions = 2 if bidirectional else 1
    D = units * directions
    cells = [_split_directions(layer, directions, cell, int(features) if depth == 0 else D, units)
             for depth, (layer, _, _) in enumerate(recurrent)]
    if head == "flatten":
        steps = _flatten_steps(dense, steps, D)
    steps = _steps(steps, maxlen, first[0])
    config = ModelConfig(units=units, dropout=dropouts[0] if dropouts else 0.0, embedding_dims=int(features),
                         maxlen=steps, cell=cell, layers=len(recurrent), bidirectional=bidirectional, head=head,
                         mask_zero=False)
    tensors = {}
    for depth, per_direction in enumerate(cells):
        for direction, weights in enumerate(per_direction):
            prefix = cell_prefix(config, depth, direction)
            tensors |= {prefix + k: v for k, v in to_torch(cell, weights, units).items()}
    kernel, bias = _dense_weights(dense, D * (steps if head == "flatten" else 1))
    tensors |= {"dense_kernel": kernel, "dense_bias": bias}
    return config, tensors


def _parse(layers: list[KerasLayer]):
    """(recurrent [(layer, cell, inner config)], dropout rates, head, dense layer), checking the order."""
    recurrent, dropouts, head, dense = [], [], None, None
    for layer in layers:
        if dense is not None:
            raise _refuse(layer, f"comes after the final Dense layer {dense.name!r}; loopynet's networks end there")
        if layer.kind in CELLS or layer.kind == "Bidirectional":
            if head is not None or (recurrent and not recurrent[-1][2].get("return_sequences")):
                raise _refuse(layer, "a recurrent layer after the head (pooling/flatten or return_sequences=False)")
            recurrent.append(_recurrent(layer, recurrent[0] if recurrent else None))
        elif layer.kind == "Dropout":
            dropouts.append(_dropout(layer, dropouts))
        elif layer.kind in HEADS:
            if not recurrent or not recurrent[-1][2].get("return_sequences") or head is not None:
                raise _refuse(layer, "must follow a recurrent layer with return_sequences=True")
            _check(layer, layer.config, data_format=("channels_last", None), keepdims=(False, None))
            head = HEADS[layer.kind]
        elif layer.kind == "Dense":
            if not recurrent:
                raise _refuse(layer, "no recurrent layer before it")
            if head is None and recurrent[-1][2].get("return_sequences"):
                raise _refuse(layer, "follows a recurrent layer with return_sequences=True without Flatten or "
                                     "pooling: it would give one output per time step")
            dense = _dense(layer)
            head = head or "last"
        else:
            raise _refuse(layer, f"layer kind not supported; loopynet imports {SUPPORTED}")
    if dense is None:
        raise UnsupportedKerasModel(f"the model does not end in Dense(1, sigmoid) (layers: "
                                    f"{[layer.name for layer in layers]})")
    return recurrent, dropouts, head, dense


def _check(layer: KerasLayer, config: dict, **allowed) -> None:
    """Each attribute's value must be one of `allowed[attribute]` (a missing attribute reads as None)."""
    for attribute, values in allowed.items():
        value = config.get(attribute)
        if value not in values:
            wanted = " or ".join(repr(v) for v in values if v is not None)
            raise _refuse(layer, f"{attribute}={value!r} is not supported (loopynet needs {wanted})")


def _recurrent(layer: KerasLayer, first):
    config = layer.config
    if layer.kind == "Bidirectional":
        _check(layer, config, merge_mode=("concat", None))
        inner = config["layer"]
        kind, config = inner["class_name"].rsplit(".", 1)[-1], inner["config"]
        if kind not in CELLS:
            raise _refuse(layer, f"wraps a {kind}; loopynet's cells are SimpleRNN, GRU and LSTM")
        backward = config_of(layer.config.get("backward_layer"))
        if backward and any(backward.get(k) != config.get(k) for k in ("units", "activation", "use_bias")):
            raise _refuse(layer, "backward_layer differs from the forward layer (units/activation/use_bias)")
    else:
        kind = layer.kind
    _check(layer, config, go_backwards=(False, None), stateful=(False, None), return_state=(False, None),
           time_major=(False, None), activation=("tanh", None))
    for attribute in ("dropout", "recurrent_dropout"):
        if float(config.get(attribute) or 0.0) != 0.0:
            raise _refuse(layer, f"{attribute}={config[attribute]} is not supported (loopynet's cells have no "
                                 "dropout inside; use Dropout layers)")
    if kind != "SimpleRNN":
        _check(layer, config, recurrent_activation=("sigmoid", None))
    if kind == "GRU":
        _check(layer, config, reset_after=(True,))
    cell = CELLS[kind]
    if first is not None:
        for attribute, mine, theirs in (("layer kind", cell, first[1]), ("units", config.get("units"),
                                        first[2].get("units")),
                                        ("Bidirectional", layer.kind == "Bidirectional",
                                         first[0].kind == "Bidirectional")):
            if mine != theirs:
                raise _refuse(layer, f"{attribute} {mine!r} differs from the first recurrent layer's {theirs!r} "
                                     "(loopynet stacks layers of one kind, size and direction)")
    return layer, cell, config


def config_of(entry) -> dict:
    return entry.get("config", {}) if isinstance(entry, dict) else {}


def _dropout(layer: KerasLayer, rates: list[float]) -> float:
    _check(layer, layer.config, noise_shape=(None,))
    rate = float(layer.config.get("rate", 0.0))
    if rates and rate != rates[0]:
        raise _refuse(layer, f"rate={rate} differs from the first Dropout's {rates[0]} (loopynet has one dropout rate)")
    return rate


def _dense(layer: KerasLayer) -> KerasLayer:
    _check(layer, layer.config, activation=("sigmoid",))
    if int(layer.config.get("units", 0)) != 1:
        raise _refuse(layer, f"units={layer.config.get('units')} is not supported (loopynet's classifier has one "
                             "sigmoid output)")
    return layer


def _flatten_steps(dense: KerasLayer, steps, D: int) -> int:
    rows = dense.weights[0].shape[0] if dense.weights else None
    if rows is None or rows % D:
        raise InputError(f"layer {dense.name!r} (Dense): weights {_shapes(dense)} do not fit a Flatten of "
                         f"(time, {D}) features")
    if steps is not None and rows != steps * D:
        raise InputError(f"layer {dense.name!r} (Dense): weight {dense.weight_names[0]!r} is {(rows, 1)} in the "
                         f"weights file; the model implies {(steps * D, 1)} (Flatten of {steps} x {D})")
    return rows // D


def _steps(steps, maxlen, layer: KerasLayer) -> int:
    if steps is not None and maxlen is not None and int(steps) != maxlen:
        raise InputError(f"--maxlen {maxlen} contradicts the model's input of {steps} time steps")
    steps = steps if steps is not None else maxlen
    if steps is None:
        raise _refuse(layer, "the input's time steps are not fixed (None): give --maxlen (the padded length "
                             "the model was used with)")
    return int(steps)


def _shapes(layer: KerasLayer) -> list[tuple]:
    return [tuple(w.shape) for w in layer.weights]


def expected_shapes(cell: str, inputs: int, units: int, use_bias: bool = True) -> list[tuple]:
    """Keras' weight shapes of one direction: kernel (I, gates*H), recurrent_kernel (H, gates*H), bias."""
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    shapes = [(inputs, gates * units), (units, gates * units)]
    return shapes + ([(2, 3 * units) if cell == "gru" else (gates * units,)] if use_bias else [])


def _split_directions(layer: KerasLayer, directions: int, cell: str, inputs: int, units: int):
    config = layer.config["layer"]["config"] if layer.kind == "Bidirectional" else layer.config
    use_bias = config.get("use_bias", True)
    expected = expected_shapes(cell, inputs, units, use_bias) * directions
    if not layer.weights:
        raise InputError(f"the weights file has no weights for layer {layer.name!r} ({layer.kind})")
    if len(layer.weights) != len(expected):
        raise InputError(f"layer {layer.name!r} ({layer.kind}): the weights file has {len(layer.weights)} weights "
                         f"{_shapes(layer)}; the model implies {len(expected)} {expected}")
    for name, weight, shape in zip(layer.weight_names, layer.weights, expected):
        if tuple(weight.shape) != shape:
            raise InputError(f"layer {layer.name!r} ({layer.kind}): weight {name!r} is {tuple(weight.shape)} in "
                             f"the weights file; the model implies {shape}")
    per = len(expected) // directions
    weights = [list(layer.weights[i * per:(i + 1) * per]) for i in range(directions)]
    if not use_bias:
        bias = np.zeros((2, 3 * units) if cell == "gru" else ({"rnn": 1, "lstm": 4}[cell] * units,), np.float32)
        weights = [w + [bias] for w in weights]
    return weights


def cell_prefix(config: ModelConfig, depth: int, direction: int) -> str:
    """State-dict prefix of one direction's cell in `build_classifier(config)`'s network."""
    from loopynet.models.factory import is_book

    return "rnn." if is_book(config) else f"layers.{depth}.{direction}.rnn."


def swap_gate_blocks(m: np.ndarray, units: int) -> np.ndarray:
    """Swap the first two H-blocks of the last axis: Keras' GRU z, r, h <-> torch's r, z, n (an involution)."""
    H = units
    return np.concatenate([m[..., H:2 * H], m[..., :H], m[..., 2 * H:]], axis=-1)


def to_torch(cell: str, weights: list[np.ndarray], units: int) -> dict[str, np.ndarray]:
    """One direction's Keras weights [kernel, recurrent_kernel, bias] as loopynet's tensors (module docstring)."""
    kernel, recurrent, bias = (np.asarray(w, dtype=np.float32) for w in weights)
    if cell == "rnn":
        return {"kernel": kernel, "recurrent_kernel": recurrent, "bias": bias}
    if cell == "lstm":
        return {"weight_ih_l0": kernel.T.copy(), "weight_hh_l0": recurrent.T.copy(), "bias_ih_l0": bias,
                "bias_hh_l0": np.zeros_like(bias)}
    return {"weight_ih_l0": swap_gate_blocks(kernel, units).T.copy(),
            "weight_hh_l0": swap_gate_blocks(recurrent, units).T.copy(),
            "bias_ih_l0": swap_gate_blocks(bias[0], units), "bias_hh_l0": swap_gate_blocks(bias[1], units)}


def to_keras(cell: str, tensors: dict[str, np.ndarray], units: int) -> list[np.ndarray]:
    """The inverse of `to_torch`: loopynet's tensors of one direction as Keras' [kernel, recurrent_kernel,
    bias]; LSTM's two torch biases add up to Keras' one."""
    if cell == "rnn":
        return [tensors["kernel"], tensors["recurrent_kernel"], tensors["bias"]]
    if cell == "lstm":
        return [tensors["weight_ih_l0"].T, tensors["weight_hh_l0"].T, tensors["bias_ih_l0"] + tensors["bias_hh_l0"]]
    return [swap_gate_blocks(tensors["weight_ih_l0"].T, units), swap_gate_blocks(tensors["weight_hh_l0"].T, units),
            np.stack([swap_gate_blocks(tensors["bias_ih_l0"], units), swap_gate_blocks(tensors["bias_hh_l0"], units)])]


def _dense_weights(dense: KerasLayer, features: int) -> tuple[np.ndarray, np.ndarray]:
    use_bias = dense.config.get("use_bias", True)
    expected = [(features, 1)] + ([(1,)] if use_bias else [])
    if [tuple(w.shape) for w in dense.weights] != expected:
        names = dense.weight_names or ["(none)"]
        raise InputError(f"layer {dense.name!r} (Dense): weights {dict(zip(names, _shapes(dense)))} in the weights "
                         f"file; the model implies {expected}")
    bias = np.asarray(dense.weights[1], np.float32) if use_bias else np.zeros(1, np.float32)
    return np.asarray(dense.weights[0], np.float32), bias
