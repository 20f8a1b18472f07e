"""loopynet.explain's outputs: n-gram shares, kernel paths, thought vectors against a hand-run oracle, the
files encode streams, the PCA map, corpus-level top words, and the CLI's results and errors."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from loopynet import Classifier, DataConfig, ModelConfig, TrainConfig
from loopynet.cli import main
from loopynet.explain import encode as encode_module
from loopynet.explain.corpus import top_words
from loopynet.explain.encode import read_vectors, write_vectors
from loopynet.explain.network import Network, document_rows
from loopynet.explain.projection import project
from loopynet.models.factory import build_classifier
from loopynet.models.ngram import NgramEnsemble, ngram_occurrences
from loopynet.tasks.classification.task import predict_logits

pytestmark = pytest.mark.usefixtures("one_thread")
TEXT = "great movie and wonderful plot unknownword . the film was boring"


def _train(tiny_imdb, tiny_vectors, model_config, maxlen=12):
    return Classifier.train(tiny_imdb, tiny_vectors, DataConfig(), replace(model_config, maxlen=maxlen),
                            TrainConfig(epochs=3, batch_size=16), progress=False, log=lambda s: None)


@pytest.fixture(scope="module")
def bilstm(tiny_imdb, tiny_vectors, tmp_path_factory):
    clf = _train(tiny_imdb, tiny_vectors, ModelConfig(units=4, cell="lstm", head="last", bidirectional=True))
    return clf, clf.save(tmp_path_factory.mktemp("explain") / "bilstm")


@pytest.fixture(scope="module")
def book(tiny_imdb, tiny_vectors):
    return _train(tiny_imdb, tiny_vectors, ModelConfig(units=4))


def test_ngram_occurrences_and_exact_token_shares():
    V, n = 10, 2
    keys, starts, sizes = ngram_occurrences(np.array([3, 4, 3, 4]), n, V)
    grams = sorted(zip(starts.tolist(), sizes.tolist()))
    assert grams == [(0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2), (3, 1)]
    config = ModelConfig(units=2, cell="gru", head="last", embedding_dims=2, maxlen=8, ngram=2)
    model = build_classifier(config, torch.zeros(V, 2))
    assert isinstance(model, NgramEnsemble)
    key = {(3,): 3, (4,): 4, (3, 4): 1 * V**2 + 34, (4, 3): 1 * V**2 + 43}
    model.ngram_keys = torch.tensor(sorted(key.values()))
    weight_of = {key[(3,)]: 1.0, key[(4,)]: 2.0, key[(3, 4)]: 8.0, key[(4, 3)]: 16.0}
    model.ngram_weights = torch.tensor([weight_of[k] for k in sorted(key.values())])
    model.ngram_bias = torch.tensor([0.5])
    shares = model.token_shares(np.array([3, 4, 3, 4]))
    # 3 occurs twice (1/2 each), 4 twice (2/2 each), "3 4" twice over 2 tokens (8/4 per token), "4 3" once (16/2)
    assert shares.tolist() == [0.5 + 2, 1 + 2 + 8, 0.5 + 2 + 8, 1 + 2]
    assert shares.sum() + 0.5 == pytest.approx(float(model.ngram_logits(np.array([[3, 4, 3, 4, 0]]))[0]))
    model.config = replace(config, ngram_tf="log")  # each n-gram's weight times log(1 + count), split as above
    shares = model.token_shares(np.array([3, 4, 3, 4]))
    l2, l3 = np.log(2), np.log(3)
    assert shares.tolist() == pytest.approx([l3 / 2 + 8 * l3 / 4, 2 * l3 / 2 + 8 * l3 / 4 + 16 * l2 / 2,
                                             l3 / 2 + 8 * l3 / 4 + 16 * l2 / 2, 2 * l3 / 2 + 8 * l3 / 4], abs=1e-12)
    assert shares.sum() + 0.5 == pytest.approx(float(model.ngram_logits(np.array([[3, 4, 3, 4, 0]]))[0]))


def test_attributions_through_the_compiled_kernels_equal_the_pure_pytorch_path(book, monkeypatch):
    from loopynet.models import fast_kernel

    assert fast_kernel.kernels() is not None  # the default path here is the compiled one
    compiled = book.explain([TEXT])[0]
    monkeypatch.setenv("LOOPYNET_KERNEL", "torch")
    assert fast_kernel.kernels() is None
    plain = book.explain([TEXT])[0]
    assert np.allclose(compiled["attribution"], plain["attribution"], atol=1e-5)
    assert np.allclose(compiled["occlusion"], plain["occlusion"], atol=1e-5)
    assert compiled["probability"] == pytest.approx(plain["probability"], abs=1e-6)


def test_thought_vector_is_forward_last_state_with_backward_first_state(bilstm):
    """Oracle: each direction's torch.nn.LSTM run by hand on the document's own tokens (no padding)."""
    clf, _ = bilstm
    ids = torch.tensor([[clf.vocab.index[w] for w in ["great", "movie", "and", "the", "plot"]]])
    x = clf.model.embeddings[ids]
    forward, backward = (d.rnn for d in clf.model.layers[0])
    with torch.no_grad():
        h_T = forward(x)[1][0][0, 0]
        h_1 = backward(x.flip(1))[1][0][0, 0]
    vector = clf.encode(["great movie and the plot"])["vectors"][0]
    assert np.allclose(vector, torch.cat([h_T, h_1]).numpy(), atol=1e-6)


def test_book_thought_vector_is_the_last_real_state_not_the_flatten_input(book):
    ids = torch.tensor([[book.vocab.index[w] for w in ["awful", "film", "."]]])
    with torch.no_grad():
        out, _ = book.model.rnn(book.model.embeddings[ids])
    vector = book.encode(["awful film ."])["vectors"][0]
    assert vector.shape == (4,) and np.allclose(vector, out[0, 2].numpy(), atol=1e-6)


@pytest.mark.parametrize("suffix", [".parquet", ".npy"])
def test_encode_streams_chunks_into_the_same_file_as_one_pass(bilstm, tmp_path, monkeypatch, suffix):
    clf, _ = bilstm
    texts = [TEXT, "", "awful film", "the actor was superb and the plot great"] * 5
    docs = clf._docs(texts)
    rows = document_rows(docs, clf.maxlen)
    meta = {"id": [f"doc{i}" for i in range(20)], "label": ["neg", "pos"] * 10, "length": [len(r) for r in rows]}
    write_vectors(tmp_path / f"whole{suffix}", Network(clf.model), rows, meta, clf.class_names)
    monkeypatch.setattr(encode_module, "CHUNK", 3)
    info = write_vectors(tmp_path / f"chunked{suffix}", Network(clf.model), rows, meta, clf.class_names)
    assert info["documents"] == 20 and info["dims"] == 8
    vectors, records = read_vectors(tmp_path / f"chunked{suffix}")
    whole, whole_records = read_vectors(tmp_path / f"whole{suffix}")
    expected = clf.encode(texts)
    assert np.allclose(vectors, expected["vectors"], atol=1e-6) and np.allclose(vectors, whole, atol=1e-6)
    assert [r["id"] for r in records] == meta["id"] and [r["label"] for r in records] == meta["label"]
    assert np.allclose([r["probability"] for r in records], clf.predict_proba(texts), atol=1e-6)
    assert [r["prediction"] for r in records] == [p["label"] for p in clf.predict(texts)]
    assert [r["length"] for r in records] == meta["length"]


def test_pca_map_is_the_top_two_principal_directions():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, 5)) * np.array([5.0, 3.0, 1.0, 0.5, 0.1])
    points, info = project(vectors)
    centred = vectors - vectors.mean(0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(centred.T))
    oracle = centred @ eigenvectors[:, ::-1][:, :2]
    assert np.allclose(np.abs(points), np.abs(oracle), atol=1e-8)
    assert np.allclose(info["explained_variance_ratio"], eigenvalues[::-1][:2] / eigenvalues.sum())
    with pytest.raises(ValueError, match="at least 2 documents"):
        project(vectors[:1])


def test_top_words_are_means_over_occurrences_with_counts():
    ids = np.array([1, 2, 1, 3, 2, 1, 4])
    values = np.array([1.0, -2.0, 3.0, 0.5, -4.0, 2.0, -9.0])
    top = top_words(ids, values, ["<pad>", "good", "bad", "meh", "rare"], top=2, min_count=2)
    assert top["positive"] == [{"word": "good", "mean": 2.0, "count": 3}]
    assert top["negative"] == [{"word": "bad", "mean": -3.0, "count": 2}]
    assert top["positions"] == 7


def test_cli_explain_json_html_png_and_encode(bilstm, tiny_imdb, tmp_path, capsys):
    _, folder = bilstm
    html, png = tmp_path / "report.html", tmp_path / "tokens.png"
    assert main(["explain", str(folder), TEXT, "awful film", "--html", str(html), "--png", str(png), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["text"] for r in result] == [TEXT, "awful film"] and len(result[0]["attribution"]) == 10
    assert html.read_text().count('class="tok in"') == 10 + 2 and png.stat().st_size > 10_000
    assert (tmp_path / "tokens-2.png").is_file()
    out = tmp_path / "v.parquet"
    assert main(["encode", str(folder), "--data", str(tiny_imdb), "--out", str(out), "--map", str(tmp_path / "m.html"),
                 "--png", str(tmp_path / "m.png")]) == 0
    vectors, records = read_vectors(out)
    assert vectors.shape == (40, 8) and (tmp_path / "m.html").read_text().count("<title>") == 40 + 1
    clf = Classifier.load(folder)
    for limit in (None, 7):  # the split comes from the token cache (type ids in cache order), whole or a slice
        _, docs, _ = clf.read_split(tiny_imdb, "test", None, limit)
        expected = 1 / (1 + np.exp(-predict_logits(clf.model, docs, clf.maxlen).astype(np.float64)))
        out = tmp_path / f"v{limit}.npy"
        assert main(["encode", str(folder), "--data", str(tiny_imdb), "--out", str(out)]
                    + ([] if limit is None else ["--limit", str(limit)])) == 0
        _, records = read_vectors(out)
        assert np.allclose([r["probability"] for r in records], expected, atol=1e-6)
        assert [r["label"] for r in records] == [clf.class_names[int(y)] for y in docs.labels]
    assert main(["explain", str(folder), "--data", str(tiny_imdb), "--top", "3", "--min-count", "2", "--json"]) == 0
    top = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert len(top["positive"]) <= 3 and all(r["count"] >= 2 for r in top["positive"] + top["negative"])


@pytest.mark.parametrize("args,message", [
    (["explain", "{model}", "x", "--html", "{tmp}/missing/r.html"], "does not exist"),
    (["explain", "{model}", "x", "--png", "{tmp}/r.jpg"], "expected a file ending in .png"),
    (["explain", "{model}", "x", "--data", "{tmp}"], "give texts (arguments, --file) or --data, not both"),
    (["explain", "{model}", "x", "--steps", "0"], "must be an integer >= 1"),
    (["encode", "{model}", "--data", "{tmp}", "--out", "{tmp}/v.csv"], "expected a file ending in .parquet or .npy"),
    (["encode", "{model}", "--data", "{tmp}"], "nothing to write"),
    (["explain", "{tmp}", "x"], "is not a loopynet model folder"),
    (["encode", "{tmp}/nothing", "--data", "{tmp}", "--out", "{tmp}/v.npy"], "does not exist"),
])
def test_cli_bad_input_is_one_line_and_exit_2(bilstm, tmp_path, capsys, args, message):
    _, folder = bilstm
    argv = [a.format(model=folder, tmp=tmp_path) for a in args]
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own checks (--steps 0)
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_cli_tagger_folder_given_to_explain(bilstm, tmp_path, capsys):
    import shutil

    _, folder = bilstm
    shutil.copytree(folder, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "kind": "tagger"}))
    assert main(["explain", str(tmp_path / "m"), "x"]) == 2
    assert "holds a 'tagger' model, not a classifier" in capsys.readouterr().err


def test_labels_follow_the_saved_threshold_unless_one_is_given(bilstm, tiny_imdb, tmp_path, capsys):
    _, folder = bilstm
    clf = Classifier.load(folder)
    texts = [TEXT, "awful film"]
    p = clf.predict_proba(texts)
    clf.threshold = {"value": float(p.mean()), "rule": "fixed"}  # between the two: one label each way
    saved = clf.save(tmp_path / "t")
    expected = [clf.class_names[int(x >= p.mean())] for x in p]
    assert expected[0] != expected[1]
    assert [e["label"] for e in clf.explain(texts)] == expected == [r["label"] for r in clf.predict(texts)]
    assert [e["label"] for e in clf.explain(texts, threshold=0.0)] == [clf.class_names[1]] * 2
    assert main(["explain", str(saved), *texts, "--json"]) == 0
    assert [r["label"] for r in json.loads(capsys.readouterr().out)] == expected
    assert main(["encode", str(saved), "--data", str(tiny_imdb), "--out", str(tmp_path / "v.npy")]) == 0
    _, records = read_vectors(tmp_path / "v.npy")
    assert [r["prediction"] for r in records] == [clf.class_names[int(r["probability"] >= p.mean())] for r in records]
