"""GRU/LSTM/SimpleRNN stacks, bidirectional, padding-safe heads, stateful chunks, fine-tuned vectors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from loopynet.config import ModelConfig, TrainConfig
from loopynet.data.vocab import EncodedDocs
from loopynet.models.classifier import BookClassifier, count_trainable
from loopynet.models.factory import build_classifier, is_book
from loopynet.models.recurrent_classifier import (
    RecurrentClassifier,
    drop_words,
    parameter_count,
    reverse_within_length,
)
from loopynet.tasks.classification.task import classification_task
from loopynet.train.loop import SparseAndDense, fit, make_optimizer

V, E, T = 30, 6, 12


def table(seed: int = 0) -> torch.Tensor:
    emb = torch.randn(V, E, generator=torch.Generator().manual_seed(seed))
    emb[0] = 0
    return emb


def config(**kw) -> ModelConfig:
    base = {"units": 5, "dropout": 0.0, "embedding_dims": E, "maxlen": T}
    return ModelConfig(**(base | kw))


def padded(lengths: list[int], t: int = T, seed: int = 1) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    ids = torch.zeros(len(lengths), t, dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.from_numpy(rng.integers(1, V, n))
    return ids


def test_reverse_within_length_reverses_real_tokens_and_keeps_padding():
    ids = torch.tensor([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8], [9, 0, 0, 0, 0]])
    lengths = torch.tensor([3, 5, 1])
    assert reverse_within_length(ids, lengths).tolist() == [[3, 2, 1, 0, 0], [8, 7, 6, 5, 4], [9, 0, 0, 0, 0]]
    x = torch.randn(3, 5, 2)
    assert torch.equal(reverse_within_length(reverse_within_length(x, lengths), lengths), x)


@pytest.mark.parametrize("cell,bidirectional,layers", [("rnn", False, 1), ("rnn", True, 2), ("gru", False, 1),
                                                       ("gru", True, 1), ("lstm", False, 2), ("lstm", True, 1)])
def test_parameter_counts_follow_keras_for_rnn_and_pytorch_for_gru_lstm(cell, bidirectional, layers):
    cfg = config(cell=cell, bidirectional=bidirectional, layers=layers, head="mean")
    model = RecurrentClassifier(cfg, table())
    H, D = 5, 5 * (2 if bidirectional else 1)
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    biases = 1 if cell == "rnn" else 2
    expected = 0
    for depth in range(layers):
        inputs = E if depth == 0 else D
        expected += (gates * (inputs * H + H * H) + gates * biases * H) * (2 if bidirectional else 1)
    assert count_trainable(model) == parameter_count(cfg) == expected + D + 1


def test_book_configuration_builds_the_book_model_and_others_the_general_one():
    assert isinstance(build_classifier(config(), table()), BookClassifier)
    assert is_book(ModelConfig())
    for kw in [{"cell": "gru"}, {"head": "last"}, {"layers": 2}, {"bidirectional": True},
               {"stateful": True, "chunk_len": 4, "head": "last"}, {"train_embeddings": True}]:
        assert isinstance(build_classifier(config(**kw), table()), RecurrentClassifier), kw
    # the general model with the book's settings computes the book's network: 37,551 weights
    assert parameter_count(ModelConfig()) == 37_551


@pytest.mark.parametrize("kw,message", [({"cell": "elman"}, "cell"), ({"head": "attention"}, "head"),
                                        ({"stateful": True, "head": "last"}, "chunk-len"),
                                        ({"stateful": True, "chunk_len": 3, "bidirectional": True, "head": "last"}, "bidirectional"),
                                        ({"stateful": True, "chunk_len": 3}, "flatten"), ({"chunk_len": 3}, "stateful"),
                                        ({"stateful": True, "chunk_len": 3, "head": "concat"}, "concat"),
                                        ({"layers": 0}, "layers"), ({"word_dropout": 1.0}, "word_dropout")])
def test_bad_settings_are_rejected_with_a_named_reason(kw, message):
    with pytest.raises(ValueError, match=message):
        build_classifier(config(**kw), table())


CASES = list(itertools.product(["rnn", "gru", "lstm"], [False, True], ["last", "mean", "max", "concat"]))


@pytest.mark.parametrize("cell,bidirectional,head", CASES)
def test_padding_does_not_change_predictions(cell, bidirectional, head):
    model = RecurrentClassifier(config(cell=cell, bidirectional=bidirectional, head=head, layers=2, dropout=0.3),
                                table(), seed=3).eval()
    lengths = [7, 3, 12, 1]
    ids = padded(lengths)
    with torch.no_grad():
        batch = model(ids)
        for row, n in enumerate(lengths):
            alone = model(ids[row : row + 1, :n])  # padded to its own length
            longer = model(torch.nn.functional.pad(ids[row : row + 1, :n], (0, 400 - n)))  # padded to 400
            assert torch.allclose(alone, batch[row : row + 1], atol=1e-6)
            assert torch.allclose(longer, batch[row : row + 1], atol=1e-6)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_concat_head_is_last_max_and_mean_side_by_side(bidirectional):
    """The oracle: each review's outputs sliced to its length by hand; bidirectional "last" is the forward
    half at the last real token and the backward half at the first."""
    model = RecurrentClassifier(config(cell="gru", bidirectional=bidirectional, head="concat"), table(), seed=4).eval()
    lengths = [7, 3, 12, 1]
    ids = padded(lengths)
    H, D = 5, 5 * (2 if bidirectional else 1)
    with torch.no_grad():
        out, _ = model.encode(ids)
        features = []
        for row, n in enumerate(lengths):
            real = out[row, :n]
            last = torch.cat([real[n - 1, :H], real[0, H:]]) if bidirectional else real[n - 1]
            features.append(torch.cat([last, real.max(0).values, real.mean(0)]))
        expected = (torch.stack(features) @ model.dense_kernel + model.dense_bias)[:, 0]
        assert torch.allclose(model(ids), expected, atol=1e-6)
    assert model.dense_kernel.shape == (3 * D, 1)
    assert count_trainable(model) == parameter_count(model.config) == count_trainable(
        RecurrentClassifier(config(cell="gru", bidirectional=bidirectional, head="max"), table())) + 2 * D


def test_drop_words_leaves_out_real_tokens_and_closes_up():
    """The oracle: the same uniform draws (torch's global generator, seeded alike) applied row by row."""
    lengths = [7, 3, 12, 1, 0]
    ids = padded(lengths)
    torch.manual_seed(11)
    dropped = drop_words(ids, 0.4)
    torch.manual_seed(11)
    draws = torch.rand(ids.shape)
    kept = [[int(i) for i, u in zip(ids[row], draws[row]) if i != 0 and u >= 0.4] for row in range(len(lengths))]
    assert dropped.tolist() == [k + [0] * (T - len(k)) for k in kept]
    assert 0 < sum(map(len, kept)) < sum(lengths)
    torch.manual_seed(11)
    assert torch.equal(drop_words(ids, 0.4, trim=True), dropped[:, : max(map(len, kept))])


def test_word_dropout_applies_in_training_only():
    wd = RecurrentClassifier(config(cell="lstm", bidirectional=True, head="max", word_dropout=0.3), table(), seed=2)
    plain = RecurrentClassifier(config(cell="lstm", bidirectional=True, head="max"), table(), seed=2)
    ids = padded([7, 3, 12, 1])
    with torch.no_grad():
        assert torch.equal(wd.eval()(ids), plain.eval()(ids))
        torch.manual_seed(3)
        trained = wd.train()(ids)
        torch.manual_seed(3)
        assert torch.allclose(trained, plain.train()(drop_words(ids, 0.3, trim=True)), atol=1e-6)
        assert not torch.allclose(trained, plain(ids), atol=1e-4)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_backward_direction_reads_each_review_from_its_last_real_token(cell):
    model = RecurrentClassifier(config(cell=cell, bidirectional=True, head="mean"), table(), seed=5).eval()
    ids = padded([4, 9])
    with torch.no_grad():
        out, _ = model.encode(ids)
        backward = model.layers[0][1]
        for row, n in enumerate([4, 9]):
            x = model.embeddings[ids[row, :n].flip(0)].unsqueeze(0)
            expected, _ = backward.run(x)
            assert torch.allclose(out[row, :n, 5:], expected[0].flip(0), atol=1e-6)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_flatten_head_works_bidirectional(cell):
    model = RecurrentClassifier(config(cell=cell, bidirectional=True, head="flatten"), table())
    logits = model(padded([3, 12, 5]))
    assert logits.shape == (3,)
    logits.sum().backward()
    assert model.dense_kernel.grad.shape == (T * 10, 1)
    with pytest.raises(ValueError, match="maxlen"):
        model(padded([3], t=T + 1))


@pytest.mark.parametrize("cell,head,layers", [("rnn", "last", 1), ("gru", "mean", 2), ("lstm", "max", 1), ("lstm", "last", 2)])
def test_stateful_chunked_inference_equals_one_pass(cell, head, layers):
    whole = RecurrentClassifier(config(cell=cell, head=head, layers=layers), table(), seed=2).eval()
    chunked = RecurrentClassifier(config(cell=cell, head=head, layers=layers, stateful=True, chunk_len=5), table(), seed=9)
    chunked.load_state_dict(whole.state_dict())
    chunked.eval()
    ids = padded([12, 5, 6, 1, 11])  # 12 = 5 + 5 + 2: a partial last chunk
    with torch.no_grad():
        assert torch.allclose(chunked(ids), whole(ids), atol=1e-6)
        assert torch.allclose(chunked(ids[:3]), whole(ids[:3]), atol=1e-6)  # another batch size
        assert torch.allclose(chunked(ids[1:2]), whole(ids[1:2]), atol=1e-6)  # a single text
        assert torch.allclose(chunked(ids[1:2, :5]), whole(ids[1:2]), atol=1e-6)  # padded to its own length


def test_stateful_training_truncates_backpropagation_at_chunk_borders():
    model = RecurrentClassifier(config(cell="gru", head="last", stateful=True, chunk_len=4, train_embeddings=True), table())
    ids = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0]])
    model.train()
    model(ids).sum().backward()
    grad = model.embeddings.grad.to_dense()
    assert grad[[1, 2, 3, 4, 5, 6, 7, 8]].abs().sum() == 0  # earlier chunks: state detached at the border
    assert grad[9].abs().sum() > 0  # the last chunk
    model.zero_grad()
    model.eval()  # without truncation (inference graph) every token matters
    model(ids).sum().backward()
    assert model.embeddings.grad.to_dense()[1].abs().sum() > 0


@pytest.mark.parametrize("cell,layers,train_embeddings", [("rnn", 1, False), ("gru", 2, True), ("lstm", 2, False)])
def test_stateful_training_recomputes_chunks_with_the_gradients_of_the_plain_graph(monkeypatch, cell, layers,
                                                                                  train_embeddings):
    """Recomputing each chunk in the backward pass (bounded memory) gives the loss and every parameter's
    gradient of the graph that keeps all activations (the oracle: `recompute` as a plain call), with
    dropout on (the same masks are drawn again), in float64."""
    from loopynet.models import recurrent_classifier

    ids = padded([12, 7, 10], seed=3)
    labels = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)

    def loss_and_grads() -> tuple[torch.Tensor, dict]:
        model = RecurrentClassifier(config(cell=cell, layers=layers, head="mean", stateful=True, chunk_len=4,
                                           dropout=0.3, train_embeddings=train_embeddings), table(), seed=5).double()
        model.train()
        torch.manual_seed(11)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(ids), labels)
        loss.backward()
        return loss.detach(), {name: p.grad.to_dense() for name, p in model.named_parameters()}

    loss, grads = loss_and_grads()
    monkeypatch.setattr(recurrent_classifier, "recompute", lambda function, *args: function(*args))
    plain_loss, plain_grads = loss_and_grads()
    assert loss.dtype == torch.float64 and torch.equal(loss, plain_loss)
    assert grads.keys() == plain_grads.keys() and len(grads) >= 3 * layers
    for name, grad in grads.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(grad, plain_grads[name], rtol=0, atol=1e-12, msg=name)


@pytest.mark.parametrize("cell,head,layers", [("rnn", "last", 1), ("gru", "mean", 2), ("lstm", "max", 1), ("lstm", "last", 2)])
def test_stateful_training_pools_chunk_by_chunk_with_the_gradients_of_the_whole_outputs(cell, head, layers):
    """The chunk-by-chunk head (`pool_part` shares combined) is the head over the whole (B, T, H) outputs:
    same loss and every gradient within 1e-12 in float64 (the oracle: `head` on `encode`'s outputs, the
    graph before pooling moved into the chunks), training mode with truncation at chunk borders."""
    ids = padded([12, 7, 10, 1], seed=4)
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    model = RecurrentClassifier(config(cell=cell, head=head, layers=layers, stateful=True, chunk_len=5,
                                       train_embeddings=cell == "gru"), table(), seed=5).double().train()

    def loss_and_grads(logits) -> tuple[torch.Tensor, dict]:
        model.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits(), labels)
        loss.backward()
        return loss.detach(), {name: p.grad.to_dense().clone() for name, p in model.named_parameters()}

    loss, grads = loss_and_grads(lambda: model(ids))
    whole_loss, whole_grads = loss_and_grads(lambda: model.head(*model.encode(ids)))
    torch.testing.assert_close(loss, whole_loss, rtol=0, atol=1e-12)
    for name, grad in grads.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(grad, whole_grads[name], rtol=0, atol=1e-12, msg=name)


def saved_bytes(model: RecurrentClassifier, ids: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd keeps from one training forward pass to its backward pass,
    without the input ids and the parameters (views count with their whole storage)."""
    leave_out = {ids.untyped_storage().data_ptr()} | {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in leave_out:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(ids), torch.ones(ids.shape[0]))
    loss.backward()
    return sum(storages.values())


@pytest.mark.parametrize("cell,head,layers", [("rnn", "last", 1), ("gru", "mean", 1), ("lstm", "max", 2)])
def test_stateful_training_memory_grows_with_chunks_not_with_outputs(cell, head, layers):
    """Issue 13: a stateful step held memory in proportion to batch x the longest document. What autograd
    keeps between the forward and the backward pass grows per extra chunk by at most the layers' states at
    its start and its (B, H) share of the head's features (plus its (B,) lengths), not by the chunk's
    (B, K, H) outputs or activations, which are recomputed."""
    B, H, K = 4, 16, 32
    model = RecurrentClassifier(config(cell=cell, head=head, layers=layers, units=H, stateful=True, chunk_len=K,
                                       dropout=0.2), table(), seed=1).train()
    short, long = (padded([n * K] + [K // 2] * (B - 1), t=n * K, seed=2) for n in (4, 24))
    growth = saved_bytes(model, long) - saved_bytes(model, short)
    per_chunk = (2 * layers + 2) * B * H * 4 + 2 * B * 8  # states (h, c) per layer, the share, lengths
    assert 0 < growth <= 20 * per_chunk, growth  # the 20 chunks' outputs alone: B * 20 * K * H * 4 bytes, 8x more


def docs(n: int, seed: int) -> EncodedDocs:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, T + 4, n)
    ids = rng.integers(1, V, lengths.sum()).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    labels = np.array([int((ids[a:b] < 10).sum() > (ids[a:b] >= 20).sum()) for a, b in itertools.pairwise(offsets)])
    return EncodedDocs(ids, offsets, labels)


def test_fine_tuned_vectors_get_sparse_updates_of_used_rows_only(tmp_path):
    model = RecurrentClassifier(config(cell="lstm", head="max", bidirectional=True, train_embeddings=True), table())
    optimizer = make_optimizer(model, TrainConfig(optimizer="adam"))
    assert isinstance(optimizer, SparseAndDense)
    ids = padded([5, 3], seed=4)
    before = model.embeddings.detach().clone()
    optimizer.zero_grad()
    model(ids).sum().backward()
    assert model.embeddings.grad.is_sparse
    optimizer.step()
    used = torch.unique(ids)
    changed = (model.embeddings.detach() != before).any(1)
    assert changed[used[used != 0]].all() and not changed[0]
    unused = torch.ones(V, dtype=torch.bool)
    unused[used] = False
    assert not changed[unused].any()


def strip_time(history):
    return [{k: v for k, v in h.items() if k not in ("seconds", "samples_per_second", "val_seconds")} for h in history]


def test_fit_with_fine_tuned_vectors_resumes_identically_and_clips(tmp_path):
    train, val = docs(48, 1), docs(16, 2)
    cfg = config(cell="gru", head="mean", train_embeddings=True)
    settings = TrainConfig(epochs=3, batch_size=8, optimizer="adam", clip_norm=1.0, lr=1e-2)
    straight = RecurrentClassifier(cfg, table())
    full = fit(straight, classification_task(straight, T), settings, train, val, progress=False, checkpoint_dir=tmp_path / "a")
    resumed = RecurrentClassifier(cfg, table())
    fit(resumed, classification_task(resumed, T), TrainConfig(**(vars(settings) | {"epochs": 1})), train, val, progress=False, checkpoint_dir=tmp_path / "b")
    history = fit(resumed, classification_task(resumed, T), settings, train, val, progress=False, checkpoint_dir=tmp_path / "b", resume=True)
    assert strip_time(history) == strip_time(full)
    assert all(torch.equal(a, b) for a, b in zip(resumed.state_dict().values(), straight.state_dict().values()))
    assert full[-1]["loss"] < full[0]["loss"]


def test_bucketed_batches_cover_every_document_once_trimmed_and_deterministic():
    from loopynet.tasks.classification.task import BucketedTask

    d = docs(100, 3)
    task = BucketedTask(T, pool=3)
    order = np.random.default_rng(0).permutation(100)
    seen = []
    batches = list(task.batches(d, 8, order))
    for ids, labels in batches:
        assert ids.shape[1] == min(T, (ids != 0).sum(1).max())  # trimmed to the longest review
        seen += list(labels)
    assert len(seen) == 100 and sorted(seen) == sorted(d.labels.tolist())
    again = list(task.batches(d, 8, order))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(batches, again))


def test_predictions_of_padding_safe_models_do_not_depend_on_batching():
    from loopynet.tasks.classification.task import predict_proba

    d = docs(40, 5)
    model = RecurrentClassifier(config(cell="gru", head="mean", bidirectional=True), table())
    sorted_trimmed = predict_proba(model, d, T, batch_size=7)
    full = torch.sigmoid(model(torch.from_numpy(__import__("loopynet.data.batching", fromlist=["x"]).pad_trunc(d, np.arange(40), T)))).detach().double().numpy()
    assert np.allclose(sorted_trimmed, full, atol=1e-6)


def test_describe_lists_trainable_and_frozen_tensors():
    from loopynet.models.recurrent_classifier import describe

    model = RecurrentClassifier(config(cell="lstm", bidirectional=True, head="last"), table())
    text = describe(model)
    assert f"Trainable params: {count_trainable(model):,}" in text and "layers.0.1.rnn.weight_hh_l0" in text
