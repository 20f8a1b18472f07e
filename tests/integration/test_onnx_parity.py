"""ONNX parity on real data: for each model kind, trained for 1 epoch on a 2,000-review slice of the IMDB
archive (real 50-d GloVe vectors), onnxruntime's probabilities on 200 real test reviews equal PyTorch's
within 1e-5; the CoNLL tagger's emissions likewise on 200 real test sentences, and its NumPy Viterbi
equals pytorch-crf's decoding wherever that one keeps to the tag scheme. The n-gram mix is refused."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import GLOVE_50D, SHARED_DATA

from loopynet import Classifier, DataConfig, ModelConfig, TrainConfig
from loopynet.data.corpus import read_corpus
from loopynet.export.graphs import ExportError
from loopynet.export.onnx import export_folder
from loopynet.export.runtime import OnnxClassifier, OnnxTagger

pytestmark = pytest.mark.usefixtures("one_thread")
TRAIN = TrainConfig(epochs=1, seed=0)
KINDS = {  # (DataConfig, ModelConfig); the book's network at its own size, the others small
    "book (SimpleRNN, Flatten)": (DataConfig(limit=2000), ModelConfig()),
    "rnn, last": (DataConfig(limit=2000), ModelConfig(units=16, head="last", maxlen=200)),
    "gru, mean": (DataConfig(limit=2000), ModelConfig(cell="gru", units=16, head="mean", maxlen=200)),
    "lstm, max": (DataConfig(limit=2000), ModelConfig(cell="lstm", units=16, head="max", maxlen=200)),
    "bidirectional lstm, 2 layers, last": (DataConfig(limit=2000),
                                           ModelConfig(cell="lstm", units=8, layers=2, bidirectional=True, head="last", maxlen=200)),
    "bidirectional gru, flatten": (DataConfig(limit=2000),
                                   ModelConfig(cell="gru", units=8, bidirectional=True, maxlen=200)),
    "stateful gru, mean": (DataConfig(limit=2000),
                           ModelConfig(cell="gru", units=16, head="mean", stateful=True, chunk_len=50, maxlen=200)),
}


@pytest.fixture(scope="module")
def test_reviews(real_data):
    corpus = read_corpus(real_data["imdb"], "test")
    return [corpus.texts[i] for i in np.random.default_rng(0).permutation(len(corpus))[:200]]


@pytest.mark.parametrize("kind", list(KINDS))
def test_onnxruntime_probabilities_equal_pytorchs_on_real_reviews(kind, real_data, test_reviews, tmp_path):
    data_config, model_config = KINDS[kind]
    clf = Classifier.train(real_data["imdb"], GLOVE_50D, data_config, model_config, TRAIN, progress=False,
                           log=lambda s: None)
    clf.save(tmp_path / "m")
    onnx_file, _ = export_folder(tmp_path / "m", tmp_path / "m.onnx")
    gap = float(np.abs(OnnxClassifier(onnx_file).predict_proba(test_reviews) - clf.predict_proba(test_reviews)).max())
    print(f"\nONNX parity {kind}: max |dp| = {gap:.3g} on {len(test_reviews)} test reviews")
    assert gap <= 1e-5


def test_the_ngram_mix_of_imdb_best_is_refused(real_data, tmp_path):
    Classifier.train(real_data["imdb"], GLOVE_50D, DataConfig(limit=300),
                     ModelConfig(units=4, head="max", ngram=2, maxlen=50), TRAIN, progress=False, log=lambda s: None).save(tmp_path / "m")
    with pytest.raises(ExportError, match="cannot be exported to ONNX.*serve it instead"):
        export_folder(tmp_path / "m", tmp_path / "m.onnx")


def test_tagger_emissions_and_constrained_viterbi_on_real_conll(tmp_path):
    import torch

    from loopynet.data.conll import read_split
    from loopynet.export.crf import allowed_transitions
    from loopynet import Tagger, TaggerConfig, TaggerDataConfig
    from loopynet.tasks.tagging.encoding import pad_batch

    conll = SHARED_DATA / "conll2003"
    tagger = Tagger.train(conll, SHARED_DATA / "glove_6B_50d_conll.bin.gz", TaggerDataConfig(limit=500, validation_limit=100),
                          TaggerConfig(units=16), TrainConfig(epochs=1, optimizer="adam", lr=1e-2, batch_size=32, seed=0),
                          progress=False, log=lambda s: None)
    tagger.save(tmp_path / "ner")
    runtime = OnnxTagger(export_folder(tmp_path / "ner", tmp_path / "ner.onnx")[0])
    sentences = [s.tokens for s in read_split(conll, "test")[:200]]
    arrays = pad_batch(tagger._encode(sentences), list(range(len(sentences))))[:4]
    with torch.no_grad():
        expected = tagger.model(*(torch.from_numpy(a) for a in arrays))
    got = runtime.session.run(None, dict(zip(("words", "cases", "chars", "lengths"), arrays)))[0]
    real = np.arange(got.shape[1])[None, :] < arrays[3][:, None]
    gap = float(np.abs(expected.numpy()[real] - got[real]).max())
    start, allowed, end = allowed_transitions(tagger.tag_names, "iobes")
    torch_paths = tagger.model.decode_emissions(expected, torch.from_numpy(arrays[3]))
    onnx_paths = runtime.tag_ids(sentences)
    def valid(path):
        return start[path[0]] and end[path[-1]] and all(allowed[a, b] for a, b in zip(path, path[1:]))
    kept = [i for i, p in enumerate(torch_paths) if valid(p)]
    print(f"\nONNX parity tagger: max |d emission| = {gap:.3g}; pytorch-crf paths within the IOBES scheme: "
          f"{len(kept)}/{len(sentences)}, equal to NumPy's: {sum(torch_paths[i] == onnx_paths[i] for i in kept)}")
    assert gap <= 1e-5 and all(valid(p) for p in onnx_paths)
    assert all(torch_paths[i] == onnx_paths[i] for i in kept)
