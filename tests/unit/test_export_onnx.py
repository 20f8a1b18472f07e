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


def without_torch(tmp_path: Path, *args: str) -> list:
    """The JSON that `loopynet ARGS` prints in a subprocess where `import torch` fails."""
    blocker = tmp_path / "blocker"
    blocker.mkdir(exist_ok=True)
    (blocker / "sitecustomize.py").write_text(BLOCK_TORCH)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(REPO / "src")])}
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert "torch is blocked" in probe.stderr  # the blocker works
    run = subprocess.run([sys.executable, "-m", "loopynet.cli", *args], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_cli_export_then_predict_onnx_without_torch(tiny_imdb, tiny_vectors, tmp_path, capsys):
    clf = trained(tiny_imdb, tiny_vectors, tmp_path / "m", KINDS["gru-mean"])
    assert main(["export", str(tmp_path / "m"), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    assert "m.onnx.json" in capsys.readouterr().out
    got = without_torch(tmp_path, "predict", str(tmp_path / "m.onnx"), "--json", "great wonderful film .",
                        "awful boring plot .")
    want = clf.predict(["great wonderful film .", "awful boring plot ."])
    assert [r["label"] for r in got] == [r["label"] for r in want]
    assert np.allclose([r["probability"] for r in got], [r["probability"] for r in want], atol=1e-5)


def test_cli_export_then_tag_predict_onnx_without_torch(tiny_vectors, tmp_path, capsys):
    """The tagger's runtime (word/casing/character encoding, CoNLL-like tokens, CRF decoding, entity spans)
    needs onnxruntime and NumPy only, and answers what the PyTorch tagger answers."""
    from loopynet import Tagger, TaggerConfig, TaggerDataConfig
    from loopynet.config import tagger_train_config

    conll = tmp_path / "conll"
    conll.mkdir()
    sentence = ("Angela NNP B-NP B-PER\nMerkel NNP I-NP I-PER\nmet VBD B-VP O\nthe DT B-NP O\nfilm NN I-NP O\n"
                "in IN B-PP O\nParis NNP B-NP B-LOC\n. . O O\n\n")
    for split in ("train", "valid", "test"):
        (conll / f"{split}.txt").write_text("-DOCSTART- -X- -X- O\n\n" + sentence * 6)
    tagger = Tagger.train(conll, tiny_vectors, TaggerDataConfig(vector_norm="unit"),
                          TaggerConfig(units=3, char_filters=4, char_dims=3, casing_dims=2),
                          tagger_train_config(epochs=15, batch_size=2, lr=0.05, ema_decay=0.0), progress=False, log=lambda s: None)
    tagger.save(tmp_path / "t")
    assert main(["export", str(tmp_path / "t"), "--format", "onnx", "--out", str(tmp_path / "t.onnx")]) == 0
    capsys.readouterr()
    texts = ["Angela Merkel met the film in Paris.", "the film met Merkel in PARIS", "unknownword"]
    got = without_torch(tmp_path, "tag", "predict", str(tmp_path / "t.onnx"), "--json", *texts)
    assert got == tagger.predict(texts)
    assert any(r["entities"] for r in got)  # the tiny tagger does tag something


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
