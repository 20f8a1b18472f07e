"""The contract every model kind keeps (book, recurrent heads, n-gram mix, tagger), trained for one epoch
on tiny synthetic data: save -> load gives identical outputs, an empty text works, padding behaves as
the network says (`padding_safe`), and `forward_vectors` on the per-position input vectors of `embed`
gives what `forward` gives on ids (the path attribution methods differentiate)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from loopynet import Classifier, DataConfig, ModelConfig, Tagger, TaggerConfig, TaggerDataConfig, TrainConfig
from loopynet.config import tagger_train_config
from loopynet.models.base import Network
from loopynet.models.ngram import NgramEnsemble
from loopynet.tasks.tagging.encoding import pad_batch

MAXLEN = 12
KINDS = {
    "book": ModelConfig(units=3),
    "lstm-max-bidirectional": ModelConfig(units=3, cell="lstm", head="max", bidirectional=True),
    "gru-last-bidirectional": ModelConfig(units=3, cell="gru", head="last", bidirectional=True, layers=2),
    "rnn-mean-stateful": ModelConfig(units=3, head="mean", stateful=True, chunk_len=5),
    "fine-tuned-rnn-last": ModelConfig(units=3, head="last", train_embeddings=True),
    "ngram-mix": ModelConfig(units=3, cell="gru", head="mean", ngram=2, rnn_maxlen=8),
}
TEXTS = ["great wonderful film", "the plot was awful and boring and the actor was dreadful .", ""]
SENTENCE = "Angela Merkel met the film in Paris ."


@pytest.fixture(scope="module")
def classifiers(tiny_imdb, tiny_vectors, one_thread):
    return {name: Classifier.train(tiny_imdb, tiny_vectors, DataConfig(), replace(config, maxlen=MAXLEN),
                                   TrainConfig(epochs=1, batch_size=16, optimizer="adam"), progress=False,
                                   log=lambda s: None)
            for name, config in KINDS.items()}


@pytest.fixture(scope="module")
def tagger(tmp_path_factory, tiny_vectors, one_thread):
    conll = tmp_path_factory.mktemp("conll")
    sentence = ("Angela NNP B-NP B-PER\nMerkel NNP I-NP I-PER\nmet VBD B-VP O\nthe DT B-NP O\nfilm NN I-NP O\n"
                "in IN B-PP O\nParis NNP B-NP B-LOC\n. . O O\n\n")
    for split in ("train", "valid", "test"):
        (conll / f"{split}.txt").write_text("-DOCSTART- -X- -X- O\n\n" + sentence * 6)
    return Tagger.train(conll, tiny_vectors, TaggerDataConfig(vector_norm="unit"),
                        TaggerConfig(units=3, char_filters=4, char_dims=3, casing_dims=2),
                        tagger_train_config(epochs=1, batch_size=2), progress=False, log=lambda s: None)


def ids_of(clf: Classifier, texts: list[str], length: int) -> torch.Tensor:
    """(B, length) token ids of `texts`, padded or truncated like prediction does."""
    from loopynet.data.batching import pad_trunc
    from loopynet.data.prepare import tokenizer_options
    from loopynet.data.tokenize import tokenize
    from loopynet.data.vocab import encode_texts

    docs = encode_texts([tokenize(t, tokenizer_options(clf.data_config)) for t in texts], clf.vocab)
    return torch.from_numpy(pad_trunc(docs, np.arange(len(texts)), length)).long()


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_gives_identical_outputs_and_an_empty_text_works(kind, classifiers, tmp_path):
    clf = classifiers[kind]
    assert isinstance(clf.model, Network)
    loaded = Classifier.load(clf.save(tmp_path / kind))
    assert np.array_equal(loaded.predict_proba(TEXTS), clf.predict_proba(TEXTS))
    empty = clf.predict_proba([""])[0]
    assert 0 < empty < 1


def test_the_tagger_saves_loads_identically_and_tags_an_empty_text(tagger, tmp_path):
    assert isinstance(tagger.model, Network)
    loaded = Tagger.load(tagger.save(tmp_path / "tagger"))
    assert loaded.predict([SENTENCE, ""]) == tagger.predict([SENTENCE, ""])
    assert tagger.predict([""])[0] == {"text": "", "tokens": [], "tags": [], "entities": []}


@pytest.mark.parametrize("kind", KINDS)
def test_padding_changes_nothing_for_padding_safe_networks_and_flatten_needs_maxlen(kind, classifiers):
    clf = classifiers[kind]
    model = clf.model.eval()
    full = ids_of(clf, TEXTS[:2], MAXLEN)
    with torch.no_grad():
        if kind == "book":
            assert not model.padding_safe
            with pytest.raises(ValueError, match="maxlen"):
                model(full[:, : MAXLEN - 1])
            return
        assert model.padding_safe
        for b in range(2):
            n = int((full[b] != 0).sum())
            assert torch.allclose(model(full[b : b + 1]), model(full[b : b + 1, :n]), atol=1e-6)


def test_padding_is_invisible_to_the_tagger(tagger):
    docs = tagger._encode([SENTENCE.split(), "Paris .".split()])
    model = tagger.model.eval()
    with torch.no_grad():
        batched = model(*[torch.from_numpy(a) for a in pad_batch(docs, [0, 1])[:4]])
        alone = model(*[torch.from_numpy(a) for a in pad_batch(docs, [1])[:4]])
    assert torch.allclose(batched[1, :2], alone[0], atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_forward_vectors_of_the_embedded_ids_equals_forward(kind, classifiers):
    model = classifiers[kind].model.eval()
    ids = ids_of(classifiers[kind], TEXTS, MAXLEN)
    x = model.embed(ids).detach().requires_grad_(True)
    assert x.shape[:2] == (3, MAXLEN if kind != "ngram-mix" else 8) and x.dtype == torch.float32
    lengths = (ids[:, : x.shape[1]] != 0).sum(1)
    logits = model.forward_vectors(x, lengths)
    expected = model(ids)
    if isinstance(model, NgramEnsemble):  # the n-gram part reads ids: its share b * ngram is not in forward_vectors
        expected = expected - model.mix[1] * model.ngram_logits(ids.numpy())
    assert torch.allclose(logits, expected, atol=1e-5)
    logits.sum().backward()
    assert x.grad.abs().sum(2)[0].gt(0).sum() >= 1  # attributions: the input vectors get gradients


def test_the_taggers_forward_vectors_of_its_step_inputs_equals_forward(tagger):
    docs = tagger._encode([SENTENCE.split(), "Paris .".split()])
    words, cases, chars, lengths, _ = (torch.from_numpy(a) for a in pad_batch(docs, [0, 1]))
    model = tagger.model.eval()
    x = model.embed(words, cases, chars).detach().requires_grad_(True)
    emissions = model.forward_vectors(x, lengths)
    assert torch.allclose(emissions, model(words, cases, chars, lengths), atol=1e-6)
    emissions[0].sum().backward()
    assert x.grad[0].abs().sum() > 0
