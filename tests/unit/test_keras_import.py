"""`loopynet import keras` against the real Keras: every layer kind in every file format, compared with
Keras' own predictions (tests/fixtures/keras, made by its make_fixtures.py with keras 3 and tf_keras);
Keras 2 compatibility (the book's json + h5 pair) rests on these tf_keras-written fixtures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_bad_input import one_line_error

from loopynet.tasks.classification.api import Classifier
from loopynet.cli import main
from loopynet.interop.keras_map import UnsupportedKerasModel, map_model
from loopynet.interop.keras_read import KerasFileError, read_keras
from loopynet.models.classifier import BookClassifier

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "keras"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
KINDS = sorted(EXPECTED["predictions"])
FORMATS = {  # format -> (files of a kind, which Keras wrote them)
    "keras3 .keras": (lambda k: [FIXTURES / "keras3" / f"{k}.keras"], "keras3"),
    "keras3 json + .weights.h5": (lambda k: [FIXTURES / "keras3" / f"{k}.json", FIXTURES / "keras3" / f"{k}.weights.h5"],
                                  "keras3"),
    "keras2 json + save_weights h5": (lambda k: [FIXTURES / "keras2" / f"{k}.json", FIXTURES / "keras2" / f"{k}_weights.h5"],
                                      "keras2"),
    "keras2 full-model h5": (lambda k: [FIXTURES / "keras2" / f"{k}_full.h5"], "keras2"),
}
VECTORS = FIXTURES / "vectors.txt"


def texts() -> list[str]:
    """The fixtures' id rows as texts: id i is the vector file's word i - 1 (id 0, padding, is no word)."""
    return [" ".join(EXPECTED["words"][i - 1] for i in row if i) for row in EXPECTED["inputs"]]


def import_cli(files, out, *extra) -> int:
    return main(["import", "keras", *map(str, files), "--vectors", str(VECTORS), "--out", str(out), *extra])


def max_delta(kind: str, fmt: str, out: Path) -> float:
    """max |P(pos) of loopynet's imported model - Keras' prediction| on the fixtures' inputs."""
    files, writer = FORMATS[fmt]
    assert import_cli(files(kind), out) == 0
    probabilities = Classifier.load(out).predict_proba(texts())
    return float(np.abs(probabilities - np.array(EXPECTED["predictions"][kind][writer])).max())


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("kind", KINDS)
def test_imported_model_predicts_as_keras(kind, fmt, tmp_path):
    assert max_delta(kind, fmt, tmp_path / "model") < 1e-5


def test_book_model_imports_as_the_book_network_with_origin_recorded(tmp_path):
    out = tmp_path / "book"
    assert import_cli(FORMATS["keras2 json + save_weights h5"][0]("book"), out) == 0
    clf = Classifier.load(out)
    assert isinstance(clf.model, BookClassifier)
    assert (clf.model.config.units, clf.model.config.maxlen, clf.model.config.embedding_dims) == (3, 7, 4)
    config = json.loads((out / "config.json").read_text())
    assert config["origin"]["format"] == "keras2-json+weights"
    assert [f["name"] for f in config["origin"]["files"]] == ["book.json", "book_weights.h5"]
    assert config["data"]["vector_norm"] == "none" and config["data"]["strip_html"] is False  # the book's pipeline
    assert config["model"]["mask_zero"] is False
    assert clf.vocab.words == ["<pad>"] + EXPECTED["words"]


def test_bidirectional_backward_direction_runs_over_the_padding_as_keras(tmp_path):
    """Keras without a mask starts the backward direction at the padded end: the imported model does too
    (mask_zero=False), so the same review padded differently gives Keras' different answers."""
    config, _ = map_model(read_keras(*FORMATS["keras3 .keras"][0]("bilstm_last")))
    assert (config.bidirectional, config.head, config.mask_zero) == (True, "last", False)
    predictions = EXPECTED["predictions"]["bilstm_last"]["keras3"]
    assert import_cli(FORMATS["keras3 .keras"][0]("bilstm_last"), tmp_path / "m") == 0
    assert not Classifier.load(tmp_path / "m").model.padding_safe
    assert abs(predictions[2] - predictions[3]) > 1e-3  # 1 token vs none: padding matters in Keras


def keras2_era_json(src: Path, dst: Path) -> Path:
    """The JSON as Keras 2.0-2.2 wrote it (the book's time): config a bare list of layers, no InputLayer
    (batch_input_shape on the first layer), dotted class names like keras.layers.wrappers.Bidirectional."""
    arch = json.loads(src.read_text())
    layers = arch["config"]["layers"]
    shape = layers[0]["config"]["batch_input_shape"]
    layers = layers[1:]
    layers[0]["config"]["batch_input_shape"] = shape
    dotted = {"Bidirectional": "keras.layers.wrappers.Bidirectional", "SimpleRNN": "keras.layers.recurrent.SimpleRNN"}
    for layer in layers:
        layer["class_name"] = dotted.get(layer["class_name"], layer["class_name"])
        layer.pop("module", None)
    dst.write_text(json.dumps({"class_name": "Sequential", "config": layers, "keras_version": "2.1.2",
                               "backend": "tensorflow"}))
    return dst


@pytest.mark.parametrize("kind", ["book", "stacked_birnn_max"])
def test_keras2_era_json_layout(kind, tmp_path):
    old = keras2_era_json(FIXTURES / "keras2" / f"{kind}.json", tmp_path / f"{kind}.json")
    out = tmp_path / "model"
    assert import_cli([old, FIXTURES / "keras2" / f"{kind}_weights.h5"], out) == 0
    probabilities = Classifier.load(out).predict_proba(texts())
    assert np.abs(probabilities - np.array(EXPECTED["predictions"][kind]["keras2"])).max() < 1e-5


def test_import_then_predict_and_export_use_the_folder(tmp_path, capsys):
    assert import_cli(FORMATS["keras3 .keras"][0]("gru_max"), tmp_path / "m") == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "m"), "--json", texts()[0]]) == 0
    result = json.loads(capsys.readouterr().out)
    assert abs(result[0]["probability"] - EXPECTED["predictions"]["gru_max"]["keras3"][0]) < 1e-5


# --- bad input: one line, exit 2, nothing written -------------------------------------------------------------------

def refused(capsys, files, out, *fragments, extra=()) -> None:
    assert import_cli(files, out, *extra) == 2
    one_line_error(capsys, *fragments)
    assert not out.exists() and not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]


def test_json_without_weights(tmp_path, capsys):
    refused(capsys, [FIXTURES / "keras2" / "book.json"], tmp_path / "out", "holds no weights",
            "pass its weights file too")


def test_weights_file_given_as_the_model(tmp_path, capsys):
    refused(capsys, [FIXTURES / "keras2" / "book_weights.h5"], tmp_path / "out", "holds no model",
            "pass the model's JSON first")


def test_weights_that_do_not_match_the_json_name_the_shape(tmp_path, capsys):
    arch = json.loads((FIXTURES / "keras2" / "book.json").read_text())
    rnn = next(layer for layer in arch["config"]["layers"] if layer["class_name"] == "SimpleRNN")
    rnn["config"]["units"] = 5
    (tmp_path / "wider.json").write_text(json.dumps(arch))
    refused(capsys, [tmp_path / "wider.json", FIXTURES / "keras2" / "book_weights.h5"], tmp_path / "out",
            "weight 'simple_rnn/simple_rnn_cell/kernel:0' is (4, 3) in the weights file; the model implies (4, 5)")


def test_weights_of_another_model(tmp_path, capsys):
    refused(capsys, [FIXTURES / "keras3" / "book.json", FIXTURES / "keras3" / "gru_max.weights.h5"], tmp_path / "out",
            "the weights file has weights for layers the model book.json does not have")


def test_json_that_is_not_a_keras_model_or_lacks_an_attribute(tmp_path, capsys):
    (tmp_path / "other.json").write_text('{"name": "not keras"}')
    refused(capsys, [tmp_path / "other.json", FIXTURES / "keras2" / "book_weights.h5"], tmp_path / "out",
            "JSON without class_name and config: not a Keras model JSON")
    arch = json.loads((FIXTURES / "keras2" / "book.json").read_text())
    del next(layer for layer in arch["config"]["layers"] if layer["class_name"] == "SimpleRNN")["config"]["units"]
    (tmp_path / "no_units.json").write_text(json.dumps(arch))
    refused(capsys, [tmp_path / "no_units.json", FIXTURES / "keras2" / "book_weights.h5"], tmp_path / "out",
            "lacks or garbles an attribute loopynet needs (KeyError: 'units')")


def test_hdf5_that_is_not_keras(tmp_path, capsys):
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["x"] = np.arange(3)
    refused(capsys, [tmp_path / "data.h5"], tmp_path / "out", "is an HDF5 file but not a Keras model or weights file")
    refused(capsys, [FIXTURES / "keras2" / "book.json", tmp_path / "data.h5"], tmp_path / "out",
            "is an HDF5 file but not Keras weights")


def test_truncated_keras_archive(tmp_path, capsys):
    data = (FIXTURES / "keras3" / "book.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    refused(capsys, [tmp_path / "cut.keras"], tmp_path / "out", "damaged or truncated .keras archive")


@pytest.mark.parametrize("name, fragments", [
    ("conv1d", ["layer 'conv1d' (Conv1D): layer kind not supported"]),
    ("gru_reset_before", ["(GRU): reset_after=False is not supported"]),
    ("go_backwards", ["(SimpleRNN): go_backwards=True is not supported"]),
])
def test_unsupported_layers_and_attributes_are_named(name, fragments, tmp_path, capsys):
    refused(capsys, [FIXTURES / "bad" / f"{name}.json", FIXTURES / "bad" / f"{name}_weights.h5"], tmp_path / "out",
            *fragments)


def test_vectors_of_another_width(tmp_path, capsys):
    (tmp_path / "v5.txt").write_text("2 5\na 1 2 3 4 5\nb 5 4 3 2 1\n")
    assert main(["import", "keras", str(FIXTURES / "keras3" / "book.keras"), "--vectors", str(tmp_path / "v5.txt"),
                 "--out", str(tmp_path / "out")]) == 2
    one_line_error(capsys, "has 5-dimensional vectors but the Keras model's first layer takes 4 features per step")
    assert not (tmp_path / "out").exists()


def test_existing_folder_is_not_replaced(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    assert import_cli(FORMATS["keras3 .keras"][0]("book"), out) == 2
    one_line_error(capsys, "exists and is a folder that is not a loopynet model folder")
    assert (out / "notes.txt").read_text() == "keep"


def test_library_errors_are_value_errors_naming_the_file(tmp_path):
    shutil.copy(FIXTURES / "keras3" / "book.keras", tmp_path / "book.keras")
    with pytest.raises(KerasFileError, match="a .keras archive holds its weights"):
        read_keras(tmp_path / "book.keras", FIXTURES / "keras3" / "book.weights.h5")
    with pytest.raises(UnsupportedKerasModel, match=r"layer 'go_backwards|\(SimpleRNN\): go_backwards=True"):
        map_model(read_keras(FIXTURES / "bad" / "go_backwards.json", FIXTURES / "bad" / "go_backwards_weights.h5"))
