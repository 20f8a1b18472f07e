"""ONNX export of the tagger on a small CoNLL slice with tiny vectors: emissions equal PyTorch's and the
NumPy Viterbi equals pytorch-crf's decoding wherever that one keeps to the tag scheme (and never breaks it)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from conftest import SHARED_DATA, write_word2vec

from loopynet import TrainConfig
from loopynet.export.onnx import export_folder
from loopynet.export.runtime import OnnxTagger

pytestmark = pytest.mark.usefixtures("one_thread")

CONLL = SHARED_DATA / "conll2003"


@pytest.fixture(scope="module")
def conll_vectors(tmp_path_factory):
    from loopynet.data.conll import read_split

    words = sorted({t.lower() for s in read_split(CONLL, "train")[:60] for t in s.tokens})
    return write_word2vec(tmp_path_factory.mktemp("vec") / "conll6.bin", words,
                          np.random.default_rng(0).normal(0, 1, (len(words), 6)))


TAGGERS = {"lstm-bidirectional-crf-chars": {"cell": "lstm"},
           "rnn-bidirectional-softmax": {"cell": "rnn", "crf": False, "char_filters": 0},
           "gru-unidirectional-crf-iob2": {"cell": "gru", "bidirectional": False, "casing_dims": 0},
           "lstm-bidirectional-crf-char-cnn-and-lstm": {"cell": "lstm", "char_encoder": "both", "char_units": 3}}


@pytest.mark.parametrize("kind", sorted(TAGGERS))
def test_tagger_emissions_and_decoding_equal_pytorch(kind, conll_vectors, tmp_path):
    import torch

    from loopynet.data.conll import read_split
    from loopynet.export.crf import allowed_transitions
    from loopynet import Tagger, TaggerConfig, TaggerDataConfig
    from loopynet.tasks.tagging.encoding import pad_batch

    scheme = "iob2" if "iob2" in kind else "iobes"
    tagger = Tagger.train(CONLL, conll_vectors, TaggerDataConfig(limit=60, validation_limit=20, tag_scheme=scheme),
                          replace(TaggerConfig(units=6, char_dims=4, char_filters=5, casing_dims=3), **TAGGERS[kind]),
                          TrainConfig(epochs=1, optimizer="adam", lr=0.01, batch_size=16, seed=0),
                          progress=False, log=lambda s: None)
    tagger.save(tmp_path / "t")
    onnx_file, sidecar_file = export_folder(tmp_path / "t", tmp_path / "t.onnx")
    runtime = OnnxTagger(onnx_file)
    sentences = [s.tokens for s in read_split(CONLL, "test")[:40]]
    docs = tagger._encode(sentences)
    arrays = pad_batch(docs, list(range(len(sentences))))[:4]
    with torch.no_grad():
        expected = tagger.model(*(torch.from_numpy(a) for a in arrays)).numpy()
    got = runtime.session.run(None, {k: v for k, v in zip(("words", "cases", "chars", "lengths"), arrays)
                                     if k in runtime.inputs})[0]
    real = np.arange(expected.shape[1])[None, :] < arrays[3][:, None]
    assert np.abs(expected[real] - got[real]).max() <= 1e-5
    start, allowed, end = allowed_transitions(tagger.tag_names, scheme)
    torch_paths = tagger.model.decode_emissions(torch.from_numpy(expected), torch.from_numpy(arrays[3]))
    onnx_paths = runtime.tag_ids(sentences)
    crf = tagger.model.config.crf
    for torch_path, onnx_path in zip(torch_paths, onnx_paths):
        assert not crf or start[onnx_path[0]] and end[onnx_path[-1]] and all(allowed[a, b] for a, b in zip(onnx_path, onnx_path[1:]))
        valid = start[torch_path[0]] and end[torch_path[-1]] and all(allowed[a, b] for a, b in zip(torch_path, torch_path[1:]))
        if valid or not crf:
            assert onnx_path == torch_path
    assert json.loads(sidecar_file.read_text())["tag_scheme"] == scheme
    assert runtime.predict(["Angela Merkel visited Paris ."])[0]["tokens"] == ["Angela", "Merkel", "visited", "Paris", "."]
