"""The NB-weighted n-gram model and its ensemble with a recurrent classifier."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from loopynet import Classifier, DataConfig, ModelConfig, TrainConfig
from loopynet.models.ngram import NgramEnsemble, doc_ngrams, feature_values
from loopynet.tasks.classification.ngram import bag_sums


def test_doc_ngrams_are_the_distinct_ngrams_of_the_real_tokens_with_their_counts():
    ids = np.array([[3, 4, 3, 4, 0, 0], [5, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    V, n = 10, 3
    rows, keys, counts = doc_ngrams(ids, n, V)

    def key(gram):
        code = 0
        for i in gram:
            code = code * V + i
        return code + (len(gram) - 1) * V**n

    expected = {(0, key(g)) for g in [(3,), (4,), (3, 4), (4, 3), (3, 4, 3), (4, 3, 4)]} | {(1, key((5,)))}
    assert set(zip(rows.tolist(), keys.tolist())) == expected and len(rows) == len(expected)
    twice = {(0, key(g)) for g in [(3,), (4,), (3, 4)]}  # 3 4 3 4: "3", "4", "3 4" occur twice, the rest once
    assert {(r, k): c for r, k, c in zip(rows.tolist(), keys.tolist(), counts.tolist())} == {
        pair: 2 if pair in twice else 1 for pair in expected}


def test_feature_values_binary_and_log():
    assert feature_values(np.array([1, 2, 5]), "binary").tolist() == [1.0, 1.0, 1.0]
    assert feature_values(np.array([1, 2, 5]), "log").tolist() == [np.log(2), np.log(3), np.log(6)]


def test_bag_sums_sum_each_documents_weights():
    weights = torch.tensor([1.0, 10.0, 100.0])
    index = torch.tensor([0, 1, 2, 2, 1])
    offsets = torch.tensor([0, 2, 2, 5])
    assert bag_sums(weights, index, offsets, torch.tensor([2, 0, 1])).tolist() == [210.0, 11.0, 0.0]
    values = torch.tensor([2.0, 0.5, 1.0, 3.0, 0.25])
    assert bag_sums(weights, index, offsets, torch.tensor([2, 0, 1]), values).tolist() == [402.5, 7.0, 0.0]


def test_bag_sums_gradient_is_exact_and_identical_run_to_run():
    """The n-gram logistic fit must repeat bit for bit with several threads (a seeded run = same model)."""
    rng = np.random.default_rng(0)
    counts = rng.integers(50, 800, 3000)
    ends = np.cumsum(counts)
    offsets = torch.from_numpy(np.concatenate([[0], ends]))
    index = torch.from_numpy(rng.integers(0, 20_000, int(counts.sum())))
    docs = torch.from_numpy(rng.permutation(3000)[:2000])
    upstream = torch.from_numpy(rng.standard_normal(2000)).float()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        grads = []
        for _ in range(5):
            weights = torch.zeros(20_000, requires_grad=True)
            (bag_sums(weights, index, offsets, docs) * upstream).sum().backward()
            grads.append(weights.grad)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(grads[0], g) for g in grads[1:])
    rows = np.concatenate([np.arange(ends[d] - counts[d], ends[d]) for d in docs.numpy()])
    per_row = np.repeat(upstream.numpy().astype(np.float64), counts[docs.numpy()])
    oracle = np.bincount(index.numpy()[rows], weights=per_row, minlength=20_000)  # d(sum)/dw in float64
    np.testing.assert_allclose(grads[0].numpy(), oracle, rtol=1e-5, atol=1e-4)


def test_ensemble_trains_saves_loads_and_ignores_padding(tiny_imdb, tiny_vectors, tmp_path):
    clf = Classifier.train(tiny_imdb, tiny_vectors, DataConfig(),
                           ModelConfig(units=4, cell="gru", head="mean", ngram=2, rnn_maxlen=8, maxlen=16),
                           TrainConfig(epochs=2, batch_size=8, optimizer="adam", lr=1e-2), progress=False, log=lambda s: None)
    assert isinstance(clf.model, NgramEnsemble) and len(clf.model.ngram_keys) > 0
    assert clf.model.mix[1] != 0
    assert clf.evaluate(tiny_imdb)["accuracy"] >= 0.9
    loaded = Classifier.load(clf.save(tmp_path / "ens"))
    texts = ["great wonderful film", "the plot was awful and boring", ""]
    assert np.allclose(loaded.predict_proba(texts), clf.predict_proba(texts))
    model = loaded.model.eval()
    ids = torch.tensor([[3, 5, 7, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        assert torch.allclose(model(ids), model(ids[:, :4]), atol=1e-6)


def test_ensemble_initialised_from_a_saved_rnn_fits_only_the_ngram_part(tiny_imdb, tiny_vectors, tmp_path):
    rnn_config = ModelConfig(units=4, cell="lstm", head="max", bidirectional=True)
    rnn = Classifier.train(tiny_imdb, tiny_vectors, DataConfig(), replace(rnn_config, maxlen=8),
                           TrainConfig(epochs=1, batch_size=8, optimizer="adam"), progress=False, log=lambda s: None)
    folder = rnn.save(tmp_path / "rnn")
    ensemble = Classifier.train(tiny_imdb, tiny_vectors, DataConfig(),
                                ModelConfig(units=4, cell="lstm", head="max", bidirectional=True, ngram=2, rnn_maxlen=8, maxlen=16),
                                TrainConfig(epochs=0), progress=False, log=lambda s: None, init_from=folder)
    assert ensemble.history == []
    assert all(torch.equal(a, b) for a, b in zip(ensemble.model.rnn.state_dict().values(), rnn.model.state_dict().values()))
    with pytest.raises(ValueError, match="vocabulary"):
        Classifier.train(tiny_imdb, tiny_vectors, DataConfig(oov="unk"),
                         ModelConfig(units=4, cell="lstm", head="max", bidirectional=True, ngram=2, maxlen=16),
                         TrainConfig(epochs=0), progress=False, log=lambda s: None, init_from=folder)


def test_log_tf_ngram_logits_equal_a_hand_counted_oracle(tiny_imdb, tiny_vectors):
    """With ngram_tf "log" each n-gram adds weight * log(1 + its count in the document): checked against counts
    taken by a plain dictionary over the same ids; the fitted model still separates the tiny set."""
    config = ModelConfig(units=4, cell="gru", head="mean", ngram=2, ngram_tf="log", rnn_maxlen=8, maxlen=16)
    clf = Classifier.train(tiny_imdb, tiny_vectors, DataConfig(), config,
                           TrainConfig(epochs=2, batch_size=8, optimizer="adam", lr=1e-2), progress=False,
                           log=lambda s: None)
    model = clf.model
    V = model.vocabulary_size
    weight_of = dict(zip(model.ngram_keys.tolist(), model.ngram_weights.tolist()))
    ids = np.array([[3, 5, 3, 5, 3, 7, 0, 0], [7, 7, 7, 2, 0, 0, 0, 0]])
    oracle = []
    for row in ids:
        tokens = [int(t) for t in row if t]
        counts: dict[int, int] = {}
        for k in (1, 2):
            for t in range(len(tokens) - k + 1):
                code = tokens[t] if k == 1 else tokens[t] * V + tokens[t + 1]
                key = code + (k - 1) * V**2
                counts[key] = counts.get(key, 0) + 1
        oracle.append(sum(weight_of.get(key, 0.0) * np.log1p(c) for key, c in counts.items()) + float(model.ngram_bias))
    np.testing.assert_allclose(model.ngram_logits(ids).numpy(), oracle, rtol=1e-5, atol=1e-6)
    assert clf.evaluate(tiny_imdb)["accuracy"] >= 0.9
