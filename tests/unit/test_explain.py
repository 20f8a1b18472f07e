"""loopynet.explain on tiny trained models of every kind: Integrated Gradients completeness, occlusion by
deletion, prefix probabilities, OOV/cut tokens, thought vectors and the files encode writes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from loopynet import Classifier, DataConfig, ModelConfig, TrainConfig
from loopynet.data.prepare import tokenizer_options
from loopynet.data.tokenize import tokenize
from loopynet.data.vocab import encode_texts
from loopynet.explain.attribution import ABSOLUTE_TOLERANCE, DEFAULT_STEPS, RELATIVE_TOLERANCE
from loopynet.explain.network import Network
from loopynet.tasks.classification.task import predict_logits

# every model kind loopynet trains; maxlen 12 (the n-gram mix: 16, its recurrent part 8)
KINDS = {
    "book": ModelConfig(units=4),
    "gru-last": ModelConfig(units=4, cell="gru", head="last"),
    "lstm-mean-bidirectional": ModelConfig(units=4, cell="lstm", head="mean", bidirectional=True),
    "rnn-max-2-layers": ModelConfig(units=4, head="max", layers=2),
    "gru-flatten": ModelConfig(units=4, cell="gru"),
    "lstm-last-stateful": ModelConfig(units=4, cell="lstm", head="last", stateful=True, chunk_len=3),
    "lstm-last-bidirectional": ModelConfig(units=4, cell="lstm", head="last", bidirectional=True),
    "ngram-mix": ModelConfig(units=4, cell="lstm", head="max", bidirectional=True, ngram=2, rnn_maxlen=8),
}
SMOOTH = {"book", "gru-last", "lstm-mean-bidirectional", "gru-flatten", "lstm-last-stateful", "lstm-last-bidirectional"}
TEXTS = ["great movie and wonderful plot unknownword . the film was boring",
         "the actor was dreadful and the plot awful . a terrible film",
         "loved the film . brilliant and superb . the plot was great and the actor wonderful"]


@pytest.fixture(scope="module", params=list(KINDS))
def trained(request, tiny_imdb, tiny_vectors, one_thread):
    model_config = replace(KINDS[request.param], maxlen=16 if request.param == "ngram-mix" else 12)
    clf = Classifier.train(tiny_imdb, tiny_vectors, DataConfig(), model_config, TrainConfig(epochs=3, batch_size=16),
                           progress=False, log=lambda s: None)
    return request.param, clf


def logits(clf: Classifier, texts: list[str]) -> np.ndarray:
    """The logits predict computes (before its sigmoid), one text at a time through the public pipeline."""
    docs = encode_texts([tokenize(t, tokenizer_options(clf.data_config)) for t in texts], clf.vocab)
    return predict_logits(clf.model, docs, clf.maxlen).astype(np.float64)


def test_model_kind_is_what_the_name_says(trained):
    name, clf = trained
    expected = {"book": "BookClassifier", "ngram-mix": "NgramEnsemble"}.get(name, "RecurrentClassifier")
    assert type(clf.model).__name__ == expected


def test_forward_vectors_equals_forward_on_ids(trained):
    _, clf = trained
    network = Network(clf.model)
    rows = [np.array([3, 5, 2, 7, 1]), np.array([4]), np.array([6, 6, 2, 9, 3, 5, 8, 2, 4, 7])]
    ids, lengths = network.rnn_batch(rows)
    with torch.no_grad():
        by_vectors = network.rnn.forward_vectors(network.rnn.embed(ids), lengths)
        by_ids = network.rnn(ids)
    assert torch.allclose(by_vectors, by_ids, atol=1e-6)


def test_integrated_gradients_are_complete_on_every_model_kind(trained):
    """Attributions sum to logit(x) - logit(baseline) within 1% of |delta| + 1e-3, with logit(x) as predict
    computes it; smooth networks need no more than the default 50 steps."""
    name, clf = trained
    explanations = clf.explain(TEXTS)
    for e, logit in zip(explanations, logits(clf, TEXTS)):
        assert e["logit"] == pytest.approx(logit, abs=1e-5)
        gap = e["logit"] - e["baseline_logit"]
        assert abs(e["attribution"].sum() - gap) <= RELATIVE_TOLERANCE * abs(gap) + ABSOLUTE_TOLERANCE
        assert e["steps"] == DEFAULT_STEPS if name in SMOOTH else e["steps"] <= 8 * DEFAULT_STEPS
        assert np.allclose(e["attribution"], e["attribution_network"] + e["attribution_ngram"])
        oov = [t for t in e["tokens"] if t["status"] == "oov"]
        assert [t["token"] for t in oov] == (["unknownword"] if "unknownword" in e["text"] else [])


def test_occlusion_is_the_change_when_the_token_is_removed(trained):
    _, clf = trained
    e = clf.explain([TEXTS[0]])[0]
    words = TEXTS[0].split()
    read = [i for i, t in enumerate(e["tokens"]) if t["status"] == "in"]
    without = [" ".join(words[:i] + words[i + 1:]) for i in read]
    expected = logits(clf, [TEXTS[0]])[0] - logits(clf, without)
    assert np.allclose([e["occlusion"][e["tokens"][i]["position"]] for i in read], expected, atol=2e-5)


def test_prefix_probabilities_equal_predicting_each_prefix(trained):
    _, clf = trained
    e = clf.explain([TEXTS[2]])[0]
    words = TEXTS[2].split()
    prefixes = [" ".join(words[: i + 1]) for i in range(len(words))]
    assert len(e["prefix_probability"]) == min(len(words), clf.maxlen)
    assert np.allclose(e["prefix_probability"], clf.predict_proba(prefixes)[: clf.maxlen], atol=1e-6)


def test_hidden_states_and_thought_vector_shapes(trained):
    _, clf = trained
    network = Network(clf.model)
    e = clf.explain([TEXTS[0]])[0]
    D = clf.model.config.units * network.directions if not network.ensemble else 4 * 2
    read = min(len(e["attribution"]), network.rnn_maxlen)
    assert e["hidden"].shape == (read, D) and e["vector"].shape == (D,)
    assert np.allclose(e["hidden_norm"], np.linalg.norm(e["hidden"], axis=1))
    encoded = clf.encode(TEXTS)
    assert encoded["vectors"].shape == (3, D) and np.allclose(encoded["vectors"][0], e["vector"], atol=1e-6)
    assert np.allclose(encoded["probability"], clf.predict_proba(TEXTS), atol=1e-6)


def test_bad_texts_give_defined_results(trained):
    _, clf = trained
    long_text = " ".join(["great", "awful", "the"] * 10)
    empty, only_oov, long = clf.explain(["", "unknownword zzz qqq", long_text])
    for e, text in ((empty, ""), (only_oov, "unknownword zzz qqq")):
        assert e["note"].startswith("0 tokens in vocabulary: nothing to attribute")
        assert len(e["attribution"]) == 0 and e["probability"] == pytest.approx(clf.predict_proba([text])[0], abs=1e-6)
    assert [t["status"] for t in only_oov["tokens"]] == ["oov"] * 3
    statuses = [t["status"] for t in long["tokens"]]
    assert statuses == ["in"] * clf.maxlen + ["cut"] * (30 - clf.maxlen)
    assert f"{30 - clf.maxlen} token(s) after maxlen={clf.maxlen} cut" in long["note"]
    assert [t["position"] for t in long["tokens"]] == list(range(clf.maxlen)) + [None] * (30 - clf.maxlen)
