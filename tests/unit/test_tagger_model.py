"""The tagger network: padding is invisible (loss and predictions), casing classes, reversed padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from loopynet.data.conll import TAGS, Sentence
from loopynet.models.recurrent_classifier import reverse_within_length
from loopynet.config import CASINGS, TaggerConfig
from loopynet.data.indexes import CharIndex, WordIndex, casing
from loopynet.models.tagger import SequenceTagger
from loopynet.tasks.tagging.encoding import encode_sentences, pad_batch
from loopynet.tasks.tagging.metrics import tag_metrics
from loopynet.tasks.tagging.task import TaggingTask

SENTS = [Sentence(["EU", "rejects", "German", "call"], ["x"] * 4, ["x"] * 4, ["B-ORG", "O", "B-MISC", "O"]),
         Sentence(["Peter", "Blackburn"], ["x"] * 2, ["x"] * 2, ["B-PER", "I-PER"]),
         Sentence(["The", "European", "Commission", "said", "on", "Thursday", "it", "disagreed", "."],
                  ["x"] * 9, ["x"] * 9, ["O", "B-ORG", "I-ORG", "O", "O", "O", "O", "O", "O"])]

pytestmark = pytest.mark.usefixtures("one_thread")



def setup(**overrides):
    words = WordIndex(["<pad>", "<unk>", "eu", "german", "peter", "the", "european", "said", "."])
    chars = CharIndex.from_sentences(SENTS)
    docs = encode_sentences(SENTS, words, chars, list(TAGS))
    config = TaggerConfig(units=6, char_dims=4, char_filters=5, casing_dims=3, vocab_size=len(words), embedding_dims=7,
                          num_chars=len(chars.chars), num_tags=len(TAGS), **overrides)
    model = SequenceTagger(config, torch.randn(len(words), 7, generator=torch.Generator().manual_seed(1)), seed=3)
    return model.eval(), docs


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("crf", [False, True])
def test_padding_changes_neither_loss_nor_predictions(cell, crf):
    model, docs = setup(cell=cell, crf=crf)
    task = TaggingTask(list(TAGS))
    with torch.no_grad():
        alone = []
        for i in range(len(docs)):
            batch = pad_batch(docs, [i])
            alone.append((float(task.loss(model, batch)[0]), model(*map(torch.from_numpy, batch[:4]))[0]))
        batch = pad_batch(docs, [0, 1, 2])  # sentences 0 and 1 are padded to 9 steps
        loss, _, items = task.loss(model, batch)
        emissions = model(*map(torch.from_numpy, batch[:4]))
    assert items == 15
    assert float(loss) * 3 == pytest.approx(sum(a for a, _ in alone), rel=1e-5)  # sum over real tokens / B
    for i, (_, e) in enumerate(alone):
        n = len(docs.words[i])
        torch.testing.assert_close(emissions[i, :n], e[:n], rtol=1e-5, atol=1e-6)
    predictions, _ = task.predict(model, docs)
    singles = [task.predict(model, type(docs)(*[[getattr(docs, f)[i]] for f in ("words", "cases", "chars", "tags",
                                                                                 "tokens")]))[0][0]
               for i in range(len(docs))]
    assert predictions == singles and [len(p) for p in predictions] == [4, 2, 9]


def test_padding_tags_do_not_matter():
    model, docs = setup(crf=True)
    batch = list(pad_batch(docs, [0, 1, 2]))
    task = TaggingTask(list(TAGS))
    before = float(task.loss(model, tuple(batch))[0].detach())
    batch[4] = batch[4].copy()
    batch[4][1, 2:] = 5  # garbage tags on padding
    assert float(task.loss(model, tuple(batch))[0].detach()) == pytest.approx(before, rel=1e-6)


def test_the_backward_reversal_keeps_padding_in_place():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    out = reverse_within_length(x, torch.tensor([3, 2]))
    assert out.tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]
    assert reverse_within_length(out, torch.tensor([3, 2])).tolist() == x.tolist()


@pytest.mark.parametrize("token, kind", [("eu", "lower"), ("EU", "upper"), ("Peter", "title"), ("1996", "numeric"),
                                         ("1-0", "mainly_numeric"), ("(1)-", "has_digit"), ("a2b", "lower"), (".", "punct"),
                                         ("McDonald", "title"), ("iPhone", "mixed")])
def test_casing_classes(token, kind):
    assert CASINGS[casing(token)] == kind


def test_lowercase_fallback_and_unknown():
    words = WordIndex(["<pad>", "<unk>", "eu", "EU"], lowercase_fallback=True)
    assert [words.lookup(t) for t in ["EU", "Eu", "eu", "xyz"]] == [3, 2, 2, 1]
    assert WordIndex(["<pad>", "<unk>", "eu"], lowercase_fallback=False).lookup("EU") == 1


def test_entity_metrics_conlleval_convention():
    names = list(TAGS)
    ids = lambda tags: [names.index(t) for t in tags]
    true = [ids(["B-PER", "I-PER", "O", "B-LOC"]), ids(["B-ORG", "I-ORG", "O"])]
    pred = [ids(["B-PER", "I-PER", "O", "B-ORG"]), ids(["I-ORG", "I-ORG", "O"])]  # I- after O starts an entity
    m = tag_metrics(true, pred, names)
    assert m["per_type"]["PER"]["f1"] == 1.0 and m["per_type"]["ORG"]["recall"] == 1.0
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["token_accuracy"] == pytest.approx(5 / 7) and m["entities"] == 3


def test_bucketed_batches_cover_every_sentence_once():
    _, docs = setup()
    task = TaggingTask(list(TAGS), bucket=2)
    order = np.random.default_rng(0).permutation(len(docs))
    batches = list(task.batches(docs, 2, order))
    assert sum(len(b[-1]) for b in batches) == 3 and sum(int(b[3].sum()) for b in batches) == 15


def test_word_dropout_only_in_training():
    model, docs = setup(word_dropout=0.9, dropout=0.0)
    batch = [torch.from_numpy(a) for a in pad_batch(docs, [0, 1, 2])[:4]]
    with torch.no_grad():
        eval_out = model(*batch)
        torch.testing.assert_close(model(*batch), eval_out)  # eval: deterministic, no word dropout
        model.train()
        torch.manual_seed(0)
        train_out = model(*batch)
    assert not torch.allclose(train_out, eval_out)
    model.eval()


def test_the_frozen_word_table_is_a_buffer_the_weight_average_leaves_alone():
    """The frozen table is no parameter: neither the optimizer nor `AveragedModel` (which averages every
    parameter, frozen ones too) reads it, and its state_dict key is still embedding.weight (old folders load)."""
    from torch.optim.swa_utils import AveragedModel

    from loopynet.train.loop import warmed_up_ema
    model, docs = setup(finetune_words=3)
    table = model.embedding.weight.clone()
    assert all(p is not model.embedding.weight for p in model.parameters())
    assert "embedding.weight" in model.state_dict() and "embedding.weight" in dict(model.named_buffers())
    averaged = AveragedModel(model, multi_avg_fn=warmed_up_ema(0.999))
    with torch.no_grad():
        model.delta.weight.add_(1.0)
    averaged.update_parameters(model)
    averaged.update_parameters(model)
    assert torch.equal(averaged.module.embedding.weight, table) and torch.equal(model.embedding.weight, table)
    assert not torch.equal(averaged.module.delta.weight, torch.zeros_like(model.delta.weight))


def test_train_embeddings_dims_corrects_only_the_first_dims():
    """train_embeddings_dims D: the step input's word part is table + (delta, 0, ..., 0); only the first D
    columns of a fine-tuned word get gradients; D above the vectors' dimensions stops with one line."""
    model, docs = setup(finetune_words=3, train_embeddings_dims=4)
    model.delta_rows[2] = 1  # "eu" has correction row 1
    assert model.delta.weight.shape == (4, 4)
    with torch.no_grad():
        model.delta.weight[1] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    words = torch.tensor([[2, 3]])
    x = model.step_inputs(words, torch.ones_like(words), torch.ones(1, 2, 3, dtype=torch.int64))
    expected = model.embedding.weight[[2, 3]].clone()
    expected[0, :4] += torch.tensor([1.0, 2.0, 3.0, 4.0])
    torch.testing.assert_close(x[0, :, :7], expected, rtol=0, atol=0)
    x[0, :, :7].sum().backward()
    assert torch.equal(model.delta.weight.grad[1], torch.ones(4)) and torch.equal(model.delta.weight.grad[0], torch.zeros(4))
    with pytest.raises(ValueError, match="train_embeddings_dims 8 is more than the word vectors' 7 dimensions"):
        setup(finetune_words=3, train_embeddings_dims=8)
