"""ONNX export of every classifier kind and the tagger on tiny fixtures: onnxruntime's outputs equal
PyTorch's, the sidecar carries what a runtime needs, `loopynet predict FILE.onnx` runs where torch
cannot be imported, and what cannot be exported says so (the n-gram mix). The tagger and real data:
tests/integration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, make_review

from loopynet import Classifier, DataConfig, ModelConfig, TrainConfig
from loopynet.cli import main
from loopynet.export.graphs import ExportError
from loopynet.export.onnx import OPSET, export_folder
from loopynet.export.runtime import OnnxClassifier, OnnxError

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN = TrainConfig(epochs=1, batch_size=16, seed=0)
KINDS = {
    "book": ModelConfig(units=4),
    "rnn-bidirectional-2-layers-last": ModelConfig(units=4, layers=2, bidirectional=True, head="last"),
    "gru-mean": ModelConfig(units=4, cell="gru", head="mean"),
    "lstm-bidirectional-max": ModelConfig(units=4, cell="lstm", bidirectional=True, head="max"),
    "lstm-flatten": ModelConfig(units=3, cell="lstm"),
    "gru-stateful-last": ModelConfig(units=4, cell="gru", head="last", stateful=True, chunk_len=3),
    "rnn-train-embeddings-max": ModelConfig(units=4, head="max", train_embeddings=True),
}


def texts() -> list[str]:
    rng = np.random.default_rng(5)
    return [make_review(rng, bool(i % 2)) for i in range(20)] + ["", "unknownword", "great " * 40]


def trained(tiny_imdb, tiny_vectors, folder: Path, config: ModelConfig) -> Classifier:
    clf = Classifier.train(tiny_imdb, tiny_vectors, DataConfig(), replace(config, maxlen=12), TRAIN, progress=False,
                           log=lambda s: None)
    clf.save(folder)
    return clf


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_onnxruntime_equals_pytorch_for_every_classifier_kind(kind, tiny_imdb, tiny_vectors, tmp_path):
    clf = trained(tiny_imdb, tiny_vectors, tmp_path / "m", KINDS[kind])
    onnx_file, sidecar_file = export_folder(tmp_path / "m", tmp_path / "m.onnx")
    runtime = OnnxClassifier(onnx_file, batch_size=7)  # batches of another size than the trace's
    gap = np.abs(runtime.predict_proba(texts()) - clf.predict_proba(texts())).max()
    assert gap <= 1e-5, gap
    sidecar = json.loads(sidecar_file.read_text())
    assert sidecar["opset"] == OPSET and sidecar["vocab"] == clf.vocab.words and sidecar["maxlen"] == 12
    assert sidecar["class_names"] == ["neg", "pos"] and sidecar["tokenizer"]["split_periods"] is True
    assert sidecar["time_axis"] == ("fixed" if KINDS[kind].head == "flatten" else "dynamic")
    assert runtime.predict(texts()[:2], threshold=0.3) == clf.predict(texts()[:2], threshold=0.3) or gap > 0


def test_the_ngram_mix_is_refused_with_a_clear_message(tiny_imdb, tiny_vectors, tmp_path):
    trained(tiny_imdb, tiny_vectors, tmp_path / "m", ModelConfig(units=4, head="max", ngram=2))
    with pytest.raises(ExportError, match="n-gram mix .* cannot be exported to ONNX.*serve it instead"):
        export_folder(tmp_path / "m", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.onnx.json").exists()


BLOCK_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, _NoTorch())
"""


def test_cli_export_then_predict_onnx_without_torch(tiny_imdb, tiny_vectors, tmp_path, capsys):
    clf = trained(tiny_imdb, tiny_vectors, tmp_path / "m", KINDS["gru-mean"])
    assert main(["export", str(tmp_path / "m"), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    assert "m.onnx.json" in capsys.readouterr().out
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCK_TORCH)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(REPO / "src")])}
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert "torch is blocked" in probe.stderr  # the blocker works
    run = subprocess.run([sys.executable, "-m", "loopynet.cli", "predict", str(tmp_path / "m.onnx"), "--json",
                          "great wonderful film .", "awful boring plot ."], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    want = clf.predict(["great wonderful film .", "awful boring plot ."])
    assert [r["label"] for r in got] == [r["label"] for r in want]
    assert np.allclose([r["probability"] for r in got], [r["probability"] for r in want], atol=1e-5)


def test_bad_export_and_onnx_inputs_are_one_line_errors(tiny_imdb, tiny_vectors, tmp_path, capsys):
    trained(tiny_imdb, tiny_vectors, tmp_path / "m", KINDS["book"])
    assert main(["export", str(tmp_path / "m"), "--format", "onnx", "--out", str(tmp_path / "m.txt")]) == 2
    assert "FILE.onnx" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nothing"), "--format", "onnx", "--out", str(tmp_path / "x.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["export", str(tmp_path / "m"), "--format", "tflite", "--out", str(tmp_path / "x.onnx")])
    assert exit_.value.code == 2 and "invalid choice: 'tflite'" in capsys.readouterr().err
    (tmp_path / "broken.onnx").write_bytes(b"not onnx")
    (tmp_path / "broken.onnx.json").write_text('{"format": "loopynet-onnx", "format_version": 1, "kind": "classifier"}')
    assert main(["predict", str(tmp_path / "broken.onnx"), "text"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a readable ONNX model" in err and len(err.splitlines()) == 1
    with pytest.raises(OnnxError, match="does not exist"):
        OnnxClassifier(tmp_path / "missing.onnx")
